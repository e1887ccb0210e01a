"""The one decoding step every handler starts with: decode, or dead-letter the record."""

from __future__ import annotations

from functools import partial
from typing import TypeVar

from streams.codec import CodecError, RegistryUnavailable
from streams.routing.decoding import decode_in_worker
from streams.routing.handlers.ports import DeadLetter, Decode, InputRecord

T = TypeVar("T")


async def decode_or_dead_letter(
    decode: Decode[T], record: InputRecord, dead_letter: DeadLetter, *, wait_s: float
) -> T | None:
    """``record``'s value decoded; None when it does not decode, after dead-lettering it with the
    codec's code (``BAD_MAGIC``, ``DECODE_ERROR``...) and message.

    A schema registry that does not answer is not the record's fault: the decode is tried again
    for up to ``wait_s``, then the worker exits
    (:func:`~streams.routing.decoding.decode_in_worker`),
    the record's transaction aborted; the record is never dead-lettered for it.
    """
    try:
        try:
            return decode(record.value, record.headers)  # the usual case: nothing to wait for
        except RegistryUnavailable:
            return await decode_in_worker(
                partial(decode, record.value, record.headers), wait_s=wait_s
            )
    except CodecError as exc:
        await dead_letter(record, exc.code, str(exc))
        return None


def key_text(key: bytes | None) -> str | None:
    """A record key as text for a reason or an audit record (None when unkeyed)."""
    return key.decode("utf-8", "replace") if key else None


def key_mismatch(key: bytes | None, customer_id: str) -> str:
    """The dead-letter reason (``KEY_MISMATCH``) of a record keyed by another customer."""
    return (
        f"the record key {key_text(key)!r} is not the record's customer_id {customer_id!r}: "
        "the key decides the partition, hence which customer's preferences and suppression "
        "state the record meets; key each record by its customer_id"
    )
