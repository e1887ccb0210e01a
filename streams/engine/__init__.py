"""A small transactional consume-transform-produce engine on confluent-kafka (issue 14).

The model the rest of the code sees (:mod:`.api`): handlers of input records, partitioned state
stores backed by changelog topics, and timers; everything a handler writes while a record is
handled (records sent, store puts) is committed with that record's offset in one Kafka
transaction, or aborted with it.
"""
