"""An emulator of OpenText Exstream's *public* HTTP contract, for tests, the demo and benchmarks.

Real Exstream cannot run here, so the project ships this emulator as a product component: OTDS
tokens (tenant-scoped, self-hosted and cloud paths), Orchestration on-demand generation, a batch
input channel taking multi-customer driver files, runtime jobs with Exstream's status names,
flow steps and their outputs, the Design API's communications with versions and workflow states,
delivery and engagement events shaped like Exstream's Experience Insights events (sent in
batches), Spring-style errors, and injected faults (latency, 429, 5xx, timeouts, outages,
duplicate and out-of-order events). A ledger of every document produced, keyed by our
communication id, lets tests count losses and duplicates. Everything Exstream does not publish
lives under ``/_emulator`` or is marked emulator-only in ``docs/exstream-emulator.md``.
"""
