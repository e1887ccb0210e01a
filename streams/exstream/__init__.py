"""The one client of OpenText Exstream's public HTTP contract.

Nothing else in the project knows Exstream's paths, headers or envelopes: the sink, the on-demand
service and the template sync call this package.

- :mod:`.settings`: where Exstream and OTDS are, which tenant, domain and input channels
  (``EXSTREAM_*`` environment variables; secrets from the environment or files);
- :mod:`.otds`: OTDS OAuth2 tokens (client credentials with scope), cached, refreshed before they
  expire, and once more after a 401;
- :mod:`.paths`: every path the client calls, self-hosted and cloud shapes;
- :mod:`.transport`: one authenticated request, both public error shapes parsed into
  :mod:`.errors` (typed, with ``retriable``);
- :mod:`.orchestration`: on-demand generation, batch driver files on an input channel, runtime
  jobs (lookup by id and by external id, stop, delete), flow steps and their outputs;
- :mod:`.design`: communications, their versions and workflow states, communication sets and
  manifests (the driver data source);
- :mod:`.driver`: driver data (one customer's record, a multi-customer batch file) built from a
  composition command (pure).

``docs/exstream-emulator.md`` lists, per call, the public source it follows or why it is an
emulator-only choice.
"""
