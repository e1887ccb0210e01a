"""The audit writer's side of signed checkpoints: a signer from the environment, and the
checkpoint records it asks to send. Framework-free: the writer passes its own ``send``.

Environment: the private key (``AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE`` or
``AIR_EXSTREAM_AUDIT_SIGNING_KEY``, see :mod:`streams.audit.keys`; without one, checkpoints are
off and the writer says so once) and the policy, ``AIR_EXSTREAM_AUDIT_CHECKPOINT_EVERY_RECORDS``,
``..._EVERY_MS``, ``..._IDLE_MS``, ``..._HEARTBEAT_MS`` (see
:class:`~streams.audit.checkpoints.CheckpointPolicy`).

Guarantees the writer must keep (and the routing worker does):

- :meth:`AuditSigning.after_append` is awaited right after a record is chained, while the record
  being processed is; its checkpoint is sent through the same ``send``, so it belongs to the
  transaction of the record it signs: both are committed or neither.
- :meth:`AuditSigning.sign_idle` runs from a timer, outside any transaction; it signs only heads
  appended ``idle_ms`` ago, longer than a transaction can stay open, hence committed.
- :meth:`AuditSigning.forget` is called when the writer loses partitions, before another writer
  can append to them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from streams.audit.chain import ChainHead
from streams.audit.checkpoints import CheckpointPolicy, CheckpointSigner, encode
from streams.audit.keys import signing_key_from_environment

log = logging.getLogger(__name__)

Send = Callable[..., Awaitable[Any]]
"""``await send(key=..., value=...)``: writes one record to the checkpoints topic."""


POLICY_ENV_PREFIX = "AIR_EXSTREAM_AUDIT_CHECKPOINT_"


def policy_from_environment(environ: Mapping[str, str]) -> CheckpointPolicy:
    """The policy, each field from ``AIR_EXSTREAM_AUDIT_CHECKPOINT_<FIELD>`` when set."""
    values: dict[str, int] = {}
    for name in ("every_records", "every_ms", "idle_ms", "heartbeat_ms"):
        variable = POLICY_ENV_PREFIX + name.upper()
        text = environ.get(variable)
        if text is None:
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise ValueError(f"{variable} must be an integer, not {text!r}") from None
    return CheckpointPolicy(**values)


def _now_ms() -> int:
    return int(time.time() * 1000)


class AuditSigning:
    """Signs the heads the writer appends, and hands the checkpoint records to its ``send``."""

    def __init__(self, signer: CheckpointSigner, *, clock: Callable[[], int] = _now_ms) -> None:
        self.signer = signer
        self._clock = clock
        self.written = 0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AuditSigning | None:
        """The writer's signing, or None (logged) when no signing key is configured."""
        key = signing_key_from_environment(environ)
        if key is None:
            log.warning(
                "audit checkpoints are off: set AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE to sign the "
                "audit chains (without signed checkpoints a forged append cannot be detected)"
            )
            return None
        env = os.environ if environ is None else environ
        signer = CheckpointSigner(key, None, policy_from_environment(env))
        log.info("audit checkpoints signed with key %s (%s)", signer.key_id, signer.policy)
        return cls(signer)

    async def after_append(self, partition: int, head: ChainHead, send: Send) -> None:
        checkpoint = self.signer.observe(partition, head, self._clock())
        if checkpoint is not None:
            await send(key=checkpoint.key, value=encode(checkpoint))
            self.written += 1

    async def sign_idle(self, send: Send) -> None:
        for checkpoint in self.signer.due(self._clock()):
            await send(key=checkpoint.key, value=encode(checkpoint))
            self.written += 1

    def forget(self, partitions: Iterable[int]) -> None:
        self.signer.forget(partitions)
