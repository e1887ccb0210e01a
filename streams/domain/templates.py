"""Which template version composes a communication.

Resolution of ``(template_id, customer language, channel)`` over every known version of the
template (all languages, all statuses), in this order:

1. no version of ``template_id`` at all -> miss ``MISSING_TEMPLATE``;
2. versions exist but none is APPROVED (all DRAFT or RETIRED) -> miss ``RETIRED_TEMPLATE``;
3. language: the customer's language if some APPROVED version exists in it, else
   :data:`FALLBACK_LANGUAGE` (``"en"``) if some APPROVED version exists in that; neither -> miss
   ``LANGUAGE_UNAVAILABLE``. Languages compare on their primary subtag, case-insensitively
   (``"en-GB"`` and ``"EN"`` are ``"en"``); a customer without a language gets the fallback;
4. version: the highest APPROVED version in that language. DRAFT and RETIRED versions are never
   used, whatever their version number;
5. channel (when one is given): it must be in that version's ``channels`` (empty means all)
   -> else miss ``CHANNEL_UNSUPPORTED``. An older approved version that happens to support the
   channel is *not* used instead: the highest approved version carries the current disclaimer and
   regulatory text, and an older one may not.

Ties (two entries with the same version number and language) are broken by ``updated_at``, then by
content, so the result never depends on the order in which the versions are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from streams.domain.records import TemplateStatus, TemplateVersion

FALLBACK_LANGUAGE = "en"
"""The language used when no approved version exists in the customer's language."""


class TemplateMissCode(StrEnum):
    MISSING_TEMPLATE = "MISSING_TEMPLATE"
    RETIRED_TEMPLATE = "RETIRED_TEMPLATE"
    LANGUAGE_UNAVAILABLE = "LANGUAGE_UNAVAILABLE"
    CHANNEL_UNSUPPORTED = "CHANNEL_UNSUPPORTED"


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateMiss:
    """Why no template version can be used."""

    code: TemplateMissCode
    template_id: str
    reason: str
    language: str | None = None
    """The normalised language looked for (``LANGUAGE_UNAVAILABLE``, ``CHANNEL_UNSUPPORTED``)."""
    version: TemplateVersion | None = None
    """The version that was found but cannot serve the channel (``CHANNEL_UNSUPPORTED`` only)."""


def normalize_language(language: str | None) -> str:
    """The lower-case primary subtag of ``language`` (``"pt-BR"`` -> ``"pt"``); blank: fallback."""
    if language is None or not language.strip():
        return FALLBACK_LANGUAGE
    return language.strip().replace("_", "-").split("-", 1)[0].lower()


def is_approved(version: TemplateVersion) -> bool:
    return version.status == TemplateStatus.APPROVED


def supports_channel(version: TemplateVersion, channel: str) -> bool:
    """Whether ``version`` renders for ``channel`` (an empty channel list means every channel)."""
    return not version.channels or channel in version.channels


def _rank(version: TemplateVersion) -> tuple[int, int, str]:
    return (version.version, version.updated_at, repr(version))


def latest_approved(
    versions: Iterable[TemplateVersion], *, template_id: str, language: str
) -> TemplateVersion | None:
    """The highest APPROVED version of ``template_id`` in exactly ``language`` (normalised)."""
    wanted = normalize_language(language)
    candidates = [
        v
        for v in versions
        if v.template_id == template_id
        and is_approved(v)
        and normalize_language(v.language) == wanted
    ]
    return max(candidates, key=_rank, default=None)


def resolve_template(
    versions: Iterable[TemplateVersion],
    *,
    template_id: str,
    language: str | None,
    channel: str | None = None,
) -> TemplateVersion | TemplateMiss:
    """The version to compose with, or why there is none (see the module docstring).

    ``versions`` may hold versions of other templates too; only ``template_id``'s are considered.
    """
    own = [v for v in versions if v.template_id == template_id]
    if not own:
        return TemplateMiss(
            code=TemplateMissCode.MISSING_TEMPLATE,
            template_id=template_id,
            reason=f"template '{template_id}' has no version in Exstream",
        )
    if not any(is_approved(v) for v in own):
        return TemplateMiss(
            code=TemplateMissCode.RETIRED_TEMPLATE,
            template_id=template_id,
            reason=f"template '{template_id}' has no APPROVED version (only DRAFT or RETIRED)",
        )
    wanted = normalize_language(language)
    chosen = latest_approved(own, template_id=template_id, language=wanted)
    if chosen is None and wanted != FALLBACK_LANGUAGE:
        chosen = latest_approved(own, template_id=template_id, language=FALLBACK_LANGUAGE)
    if chosen is None:
        return TemplateMiss(
            code=TemplateMissCode.LANGUAGE_UNAVAILABLE,
            template_id=template_id,
            language=wanted,
            reason=(
                f"template '{template_id}' has no APPROVED version in language '{wanted}' "
                f"nor in the fallback language '{FALLBACK_LANGUAGE}'"
            ),
        )
    if channel is not None and not supports_channel(chosen, channel):
        return TemplateMiss(
            code=TemplateMissCode.CHANNEL_UNSUPPORTED,
            template_id=template_id,
            language=wanted,
            reason=(
                f"template '{template_id}' version {chosen.version} ({chosen.language}) "
                f"does not render for channel {channel}"
            ),
            version=chosen,
        )
    return chosen
