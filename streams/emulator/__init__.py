"""A faithful emulator of OpenText Exstream's HTTP API, for tests, the demo and benchmarks.

Real Exstream cannot run here, so the project ships this emulator as a product component: OAuth2
client credentials, synchronous on-demand composition, asynchronous batch jobs with per-item
outcomes, document download, signed delivery callbacks for each channel's lifecycle, and injected
faults (latency, 429 with Retry-After, 5xx, timeouts, outage windows, duplicate and out-of-order
callbacks). A ledger of every document produced, keyed by communication id, lets tests count
losses and duplicates. The contract is documented in ``docs/exstream-emulator.md``.
"""
