"""Composition of a template version with business data into a document, as Exstream would do.

``render`` fills a :class:`~streams.domain.records.TemplateVersion` body with the communication's
data and lays it out as a PDF (:mod:`streams.emulator.pdf`). The placeholder syntax is the one the
simulator writes (``streams.simulator.generator._body``): ``{field}`` is replaced by the value of
``field``, ``{{`` and ``}}`` are literal braces. A placeholder with no value (absent, ``None`` or
blank, the same rule the event catalogue applies) renders as ``[field missing]`` and is reported in
:attr:`RenderedDocument.missing_fields`, so tests and the ledger can see an incomplete document.

The body is scanned once, left to right; values are inserted verbatim and never scanned again, so
a value such as ``"{other}"`` stays literal text (``str.format`` is never used on the template or
the data). Anything that is not a well-formed placeholder (``{`` without a closing ``}``, a name
with spaces, a lone ``}``) is kept as literal text rather than rejected: real templates are authored
by people and the emulator should show, not hide, what they wrote.

Disclaimers are made up: :func:`disclaimer_text` returns a deterministic legal-sounding text for a
disclaimer id and version, so that changing a template's disclaimer version visibly changes the
document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from streams.domain.records import TemplateVersion
from streams.emulator.pdf import pdf_document

__all__ = ["RenderedDocument", "disclaimer_text", "fill_placeholders", "render"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_LINE_BREAK = re.compile(r"\r\n|[\r\n]")


@dataclass(frozen=True, slots=True)
class RenderedDocument:
    pdf: bytes
    text: str
    """The rendered plain text (body lines, then the footer with the disclaimer)."""
    missing_fields: tuple[str, ...]
    """Placeholders with no value in the data, in order of first appearance, without repeats."""


def render(
    template: TemplateVersion,
    data: Mapping[str, str],
    *,
    disclaimer_text: str | None,
) -> RenderedDocument:
    """Fill ``template``'s body with ``data`` and lay it out as a PDF with a disclaimer footer."""
    body, missing = fill_placeholders(template.body, data)
    body_lines = _LINE_BREAK.split(body) if body.strip() else []
    if body_lines:
        title, lines = body_lines[0], body_lines[1:]
    else:
        title, lines = template.communication_type.replace("_", " ").title(), []
    footer_lines = [disclaimer_text] if disclaimer_text else []
    footer_lines.append(_identification(template))
    footer = "\n".join(footer_lines)
    pdf = pdf_document(title=title, lines=lines, footer=footer)
    text = "\n".join([title, *lines, "", footer])
    return RenderedDocument(pdf=pdf, text=text, missing_fields=missing)


def fill_placeholders(body: str, data: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """Return ``body`` with its placeholders filled, and the names that had no value."""
    out: list[str] = []
    missing: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        char = body[i]
        if char == "{":
            if body.startswith("{{", i):
                out.append("{")
                i += 2
                continue
            end = body.find("}", i + 1)
            name = body[i + 1 : end] if end != -1 else ""
            if end != -1 and _NAME.fullmatch(name):
                value = data.get(name)
                if value is None or not value.strip():
                    out.append(f"[{name} missing]")
                    if name not in missing:
                        missing.append(name)
                else:
                    out.append(value)
                i = end + 1
                continue
            out.append(char)  # not a placeholder: keep the brace as written
            i += 1
        elif char == "}":
            out.append("}")
            i += 2 if body.startswith("}}", i) else 1
        else:
            nxt = _next_brace(body, i)
            out.append(body[i:nxt])
            i = nxt
    return "".join(out), tuple(missing)


def _next_brace(text: str, start: int) -> int:
    positions = [p for p in (text.find("{", start), text.find("}", start)) if p != -1]
    return min(positions) if positions else len(text)


def _identification(template: TemplateVersion) -> str:
    if template.disclaimer_id is None:
        disclaimer = "no disclaimer"
    else:
        version = "" if template.disclaimer_version is None else f" v{template.disclaimer_version}"
        disclaimer = f"disclaimer {template.disclaimer_id}{version}"
    return (
        f"Template {template.template_id} v{template.version} ({template.language}); {disclaimer}"
    )


# --------------------------------------------------------------------------- made-up disclaimers

_KNOWN_DISCLAIMERS = {
    "disc-general": "General disclaimer",
    "disc-regulatory": "Regulatory notice",
    "disc-marketing": "Marketing disclaimer",
}

_CLAUSES = (
    "This communication is provided for information only and does not change the terms of your "
    "agreement with Air Inc.",
    "Amounts shown are those recorded on the date of this document; payments made since then may "
    "not yet be reflected.",
    "If you believe any information in this document is incorrect, contact Air Inc. customer "
    "service within 30 days.",
    "Air Inc. processes your personal data as described in its privacy notice, available on "
    "request and in the customer portal.",
    "This document was produced automatically and is valid without a signature.",
)


def disclaimer_text(disclaimer_id: str | None, version: int | None) -> str | None:
    """A deterministic, made-up legal text for ``disclaimer_id`` at ``version`` (``None`` if no id).

    Every version has a different wording (the clauses rotate and the version is named), so a
    template moving to a new disclaimer version produces a visibly different document.
    """
    if disclaimer_id is None:
        return None
    name = _KNOWN_DISCLAIMERS.get(disclaimer_id)
    if name is None:
        label = disclaimer_id.removeprefix("disc-").replace("-", " ").replace("_", " ").strip()
        name = f"{label.capitalize() or disclaimer_id} disclaimer"
    number = 1 if version is None else version
    start = (number - 1) % len(_CLAUSES)
    count = 2 + (number - 1) % 2
    clauses = [_CLAUSES[(start + k) % len(_CLAUSES)] for k in range(count)]
    return f"{name}, version {number} ({disclaimer_id}): " + " ".join(clauses)
