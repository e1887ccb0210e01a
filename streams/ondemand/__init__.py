"""On-demand documents for the customer portal (flow 5): ``air-exstream ondemand``.

Pure logic (no aiohttp, no Kafka): :mod:`.documents` (document types, request validation,
template resolution), :mod:`.auth` (API keys), :mod:`.links` (signed document URLs),
:mod:`.cache` (bounded LRU of document bytes), :mod:`.metrics`, :mod:`.records` (metadata and
audit records). I/O: :mod:`.exstream` (the Exstream client), :mod:`.kafka` (the record writer),
:mod:`.server` (HTTP) and :mod:`.cli`. The HTTP contract is ``docs/ondemand-openapi.yaml``.
"""
