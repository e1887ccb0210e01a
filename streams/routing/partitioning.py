"""Is a record in the partition its key belongs to? The join depends on it.

The events and the preferences are joined per partition: an event meets the preferences and the
suppression state of its own partition number. That holds only when every producer puts a key in
the same partition, the one the Java client and aiokafka choose: murmur2 of the key bytes,
made positive, modulo the partition count. confluent-kafka's (librdkafka's) default partitioner is
CRC32-based and chooses another partition for most keys, so a platform team publishing with default
settings would have its events joined with another partition's preferences (with more than one
worker: with none at all). :func:`partition_problem` says so, with the fix, instead.
"""

from __future__ import annotations

from functools import lru_cache

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as an unsigned 32-bit
    value."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    full = length - length % 4
    for i in range(0, full, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[full + 2] << 16
    if rest >= 2:
        h ^= data[full + 1] << 8
    if rest >= 1:
        h ^= data[full]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@lru_cache(maxsize=1 << 16)
def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner gives ``key`` (``toPositive``, then
    modulo). Remembered for the last 65,536 keys: every keyed event and preference is checked, a
    customer's key comes again and again, and the hash in Python costs about 3 us."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


WRONG_PARTITION = "WRONG_PARTITION"

FIX = (
    "publish with the murmur2 partitioner (confluent-kafka/librdkafka: "
    "partitioner=murmur2_random; the Java client and aiokafka use it by default), "
    "then replay the dead letter"
)


def partition_problem(key: bytes, partition: int, partitions: int) -> str | None:
    """None when ``key`` belongs in ``partition`` of a topic with ``partitions`` partitions;
    else the reason for the dead letter, naming the fix."""
    expected = murmur2_partition(key, partitions)
    if expected == partition:
        return None
    return (
        f"the record is in partition {partition} but its key belongs in partition {expected} "
        f"of {partitions} (murmur2, the partitioner every producer of customer-keyed topics "
        "must use): it would be joined with another partition's preferences and state; " + FIX
    )
