"""Domain records and pure decision logic: no Kafka or network imports here.

- :mod:`~streams.domain.records`: the record shapes (single source of truth);
- :mod:`~streams.domain.catalogue`: fields per event type, event validation;
- :mod:`~streams.domain.rules`: which communication rules fire for an event;
- :mod:`~streams.domain.templates`: which approved template version composes it;
- :mod:`~streams.domain.contacts`: email, phone, address and quiet-hours checks;
- :mod:`~streams.domain.channel`: channel choice and delivery fallback;
- :mod:`~streams.domain.suppression`: one communication per business fact per window;
- :mod:`~streams.domain.ids`: deterministic communication, alert and audit ids;
- :mod:`~streams.domain.alignment`: rules <-> templates alerts;
- :mod:`~streams.domain.routing`: the whole per-event decision, :func:`route_event`, and
  :func:`route_indexed` for workers that keep their state decoded in memory (its outcome in
  :mod:`~streams.domain.outcome`, its per-event machinery in :mod:`~streams.domain.router`);
- :mod:`~streams.domain.reference_index`: rules by event type and memoised template resolution,
  built once per version of the reference data;
- :mod:`~streams.domain.fast_validation`: a quick "surely valid" test for the hot path;
- :mod:`~streams.domain.document_requests`: the decision for one portal document request.
"""
