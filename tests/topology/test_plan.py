from __future__ import annotations

import dataclasses

import pytest

from topology.model import TopicSpec
from topology.plan import ObservedTopic, plan

pytestmark = pytest.mark.unit

SPEC = TopicSpec(
    name="a",
    partitions=6,
    replication_factor=3,
    config={"cleanup.policy": "delete", "retention.ms": "-1", "min.insync.replicas": "2"},
    key="customer_id",
    value="X",
    description="d",
)


def observed(**changes: object) -> ObservedTopic:
    base = {"name": "a", "partitions": 6, "replication_factor": 3, "config": dict(SPEC.config)}
    base.update(changes)
    return ObservedTopic(**base)  # type: ignore[arg-type]


def test_missing_topic_is_created() -> None:
    result = plan((SPEC,), {})
    assert result.create == (SPEC,)
    assert not result.drift


def test_equal_topic_is_in_sync() -> None:
    result = plan((SPEC,), {"a": observed()})
    assert result.empty
    assert result.in_sync == ("a",)


@pytest.mark.parametrize(
    ("changes", "setting", "actual"),
    [
        ({"partitions": 3}, "partitions", "3"),
        ({"replication_factor": 1}, "replication factor", "1"),
        ({"config": {**SPEC.config, "cleanup.policy": "compact"}}, "cleanup.policy", "compact"),
        ({"config": {**SPEC.config, "retention.ms": "1000"}}, "retention.ms", "1000"),
        (
            {"config": {k: v for k, v in SPEC.config.items() if k != "min.insync.replicas"}},
            "min.insync.replicas",
            "unset",
        ),
    ],
)
def test_each_kind_of_drift_is_reported(
    changes: dict[str, object], setting: str, actual: str
) -> None:
    result = plan((SPEC,), {"a": observed(**changes)})
    assert not result.create
    assert [(d.setting, d.actual) for d in result.drift] == [(setting, actual)]
    assert "topology says" in str(result.drift[0])


def test_topics_not_in_the_topology_are_ignored() -> None:
    result = plan((SPEC,), {"a": observed(), "other": observed(name="other", partitions=1)})
    assert result.empty


def test_applying_the_plan_yields_an_empty_plan() -> None:
    first = plan((SPEC,), {})
    after = {
        s.name: ObservedTopic(s.name, s.partitions, s.replication_factor, dict(s.config))
        for s in first.create
    }
    assert plan((SPEC,), after).empty


def test_configs_the_client_may_not_read_are_no_drift() -> None:
    hidden = ObservedTopic("a", 6, 3, {}, configs_visible=False)
    result = plan((SPEC,), {"a": hidden})
    assert not result.drift
    assert result.in_sync == ("a",)


def test_a_refused_creation_is_reported_apart() -> None:
    other = dataclasses.replace(SPEC, name="b")
    result = plan((SPEC, other), {}).refused(["b"])
    assert result.create == (SPEC,)
    assert result.not_authorized == ("b",)
    assert not result.empty
