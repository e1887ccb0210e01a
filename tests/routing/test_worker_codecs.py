from __future__ import annotations

import pytest

from streams.codec import Codecs
from streams.routing.worker_codecs import WorkerCodecs
from tests.domain.factories import billing_event, preference
from topology import names
from topology.model import load_topology

pytestmark = pytest.mark.unit


def test_the_worker_codecs_are_the_topics_codecs() -> None:
    topology = load_topology("local", prefix="t.")
    codecs = Codecs(topology=topology)
    wc = WorkerCodecs.prepared(codecs, topology)
    event = billing_event()
    on_topic = codecs.for_topic(topology.name(names.ACCOUNT_EVENTS), type(event))
    assert wc.account.decode(on_topic.encode(event)) == event
    pref = preference()
    # preferences arrive as the topic says; the table keeps the state encoding
    assert wc.preference_state.decode(wc.preference_state.encode(pref)) == pref
    assert (
        wc.preference.decode(
            codecs.for_topic(topology.name(names.PREFERENCES), type(pref)).encode(pref)
        )
        == pref
    )
