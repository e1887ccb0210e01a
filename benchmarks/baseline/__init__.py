"""The decision path as it was before it was optimised: the baseline of ``benchmarks/decision.py``
and the oracle of the equivalence tests (``tests/domain/test_routing_equivalence.py`` and
``tests/codec/test_codec_equivalence.py``).

Frozen copies, verbatim apart from imports, of the code at commit ``cf18d81`` that the fast path
replaced: ``route_event`` and its per-event helpers (:mod:`.routing`), the identifiers hashed
through ``json.dumps`` (:mod:`.ids`), the codec's ``encode``/``decode`` through fastavro's
``schemaless_writer``/``schemaless_reader`` and the dataclass <-> dict conversion (:mod:`.codec`),
the audit chain's ``append`` (:mod:`.chain`) and the routing worker's JSON round trips of the
suppression state and chain heads (:mod:`.state`). The helpers the fast path did not change
(``validate_event``, ``matching_rules``, ``resolve_template``, ``choose_channel``, the suppression
``decide``, the alignment alerts) are imported from ``streams.domain`` as they are.

Do not optimise this package: it measures how far the fast path moved from where it started, and
the equivalence tests prove the fast path still decides and encodes exactly as it did.
"""
