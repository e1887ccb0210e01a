"""The partition check: Kafka's murmur2 exactly, and a reason that names the fix."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from streams.routing.partitioning import (
    murmur2,
    murmur2_partition,
    partition_problem,
)

pytestmark = pytest.mark.unit

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed ints as Java prints them)
JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "signed"), JAVA.items())
def test_murmur2_equals_the_java_clients(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


@given(st.binary(max_size=64))
def test_murmur2_equals_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_the_partition_is_within_range_and_the_check_agrees_with_it(
    key: bytes, partitions: int
) -> None:
    p = murmur2_partition(key, partitions)
    assert 0 <= p < partitions
    assert partition_problem(key, p, partitions) is None
    if partitions > 1:
        assert partition_problem(key, (p + 1) % partitions, partitions) is not None


def test_the_reason_names_the_partitions_and_the_fix() -> None:
    key = b"cust-000001"
    right = murmur2_partition(key, 6)
    reason = partition_problem(key, (right + 1) % 6, 6)
    assert reason is not None
    assert f"belongs in partition {right} of 6" in reason
    assert "partitioner=murmur2_random" in reason
    assert "cust-000001" not in reason  # no customer id in a reason that is logged elsewhere
