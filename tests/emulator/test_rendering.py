"""Composition of templates with data: placeholders, missing fields, braces, disclaimers."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from streams.domain.records import TemplateVersion
from streams.emulator.rendering import (
    RenderedDocument,
    disclaimer_text,
    fill_placeholders,
    render,
)
from streams.simulator.generator import Scenario, generate

pytestmark = pytest.mark.unit

BODY = (
    "Payment Reminder\nDear customer {customer_id},\namount due: {amount_due}\ndue date: {due_date}"
)


def _template(
    body: str = BODY,
    *,
    disclaimer_id: str | None = "disc-general",
    disclaimer_version: int | None = 2,
) -> TemplateVersion:
    return TemplateVersion(
        template_id="tpl-payment-reminder",
        version=2,
        language="en",
        status="APPROVED",
        communication_type="PAYMENT_REMINDER",
        required_fields=["amount_due", "customer_id", "due_date"],
        channels=["PRINT"],
        disclaimer_id=disclaimer_id,
        disclaimer_version=disclaimer_version,
        body=body,
        updated_at=0,
    )


def _render(template: TemplateVersion, data: dict[str, str]) -> RenderedDocument:
    return render(
        template,
        data,
        disclaimer_text=disclaimer_text(template.disclaimer_id, template.disclaimer_version),
    )


def _pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    return "\n".join(page.extract_text() for page in reader.pages)


FULL = {"customer_id": "c-00042", "amount_due": "612.40", "due_date": "2026-02-01"}


# --------------------------------------------------------------------------- placeholders


def test_placeholders_are_filled_in_text_and_pdf() -> None:
    doc = _render(_template(), FULL)

    assert doc.missing_fields == ()
    assert doc.text.splitlines()[:4] == [
        "Payment Reminder",
        "Dear customer c-00042,",
        "amount due: 612.40",
        "due date: 2026-02-01",
    ]
    pdf_text = _pdf_text(doc.pdf)
    for expected in ("Payment Reminder", "Dear customer c-00042,", "amount due: 612.40"):
        assert expected in pdf_text
    assert "Page 1 of 1" in pdf_text
    reader = PdfReader(io.BytesIO(doc.pdf), strict=True)
    assert reader.metadata is not None
    assert reader.metadata.title == "Payment Reminder"


def test_missing_and_blank_values_are_marked_and_listed_once_in_order() -> None:
    body = "Title\n{due_date} {amount_due}\nagain {due_date}\n{customer_id}"
    doc = _render(_template(body), {"customer_id": "c-1", "amount_due": "   "})

    assert doc.missing_fields == ("due_date", "amount_due")
    assert "[due_date missing] [amount_due missing]" in doc.text
    assert "again [due_date missing]" in doc.text
    assert "[due_date missing] [amount_due missing]" in _pdf_text(doc.pdf)


def test_double_braces_are_literal_braces() -> None:
    body = "Title\nuse {{customer_id}} for }} and {{ {customer_id}"
    filled, missing = fill_placeholders(body, {"customer_id": "c-7"})

    assert filled == "Title\nuse {customer_id} for } and { c-7"
    assert missing == ()


def test_a_value_containing_a_placeholder_is_not_expanded_again() -> None:
    data = {
        "customer_id": "{amount_due}",
        "amount_due": "SECRET",
        "due_date": "{{0.__class__}} {0} {due_date!r:>10}",
    }
    doc = _render(_template(), data)

    assert "Dear customer {amount_due}," in doc.text
    assert doc.text.count("SECRET") == 1  # only where {amount_due} is in the template
    assert "due date: {{0.__class__}} {0} {due_date!r:>10}" in doc.text
    assert doc.missing_fields == ()


def test_malformed_placeholders_are_kept_as_written() -> None:
    filled, missing = fill_placeholders(
        "a {not closed\nb {with space} c {} d } e {x{y}", {"y": "Y"}
    )

    assert filled == "a {not closed\nb {with space} c {} d } e {xY"
    assert missing == ()


def test_format_specs_and_attribute_access_are_not_placeholders() -> None:
    filled, missing = fill_placeholders("{0} {a[0]} {a!r} {a:>5}", {"a": "A"})

    assert filled == "{0} {a[0]} {a!r} {a:>5}"
    assert missing == ()


@given(
    st.text(alphabet=st.sampled_from("ab{}_ \n"), max_size=60),
    st.dictionaries(
        st.sampled_from(["a", "b", "_", "ab"]), st.text(alphabet="{}ab ", max_size=8), max_size=4
    ),
)
@settings(max_examples=200, deadline=None)
def test_filling_never_fails_and_values_are_never_rescanned(
    body: str, data: dict[str, str]
) -> None:
    filled, missing = fill_placeholders(body, data)

    assert len(set(missing)) == len(missing)
    for name in missing:
        assert f"[{name} missing]" in filled
    # Filling with unique markers, then swapping each marker for its value, gives the same result:
    # values are inserted verbatim and their braces are never scanned again.
    markers = {name: f"\x00{name}\x00" if value.strip() else value for name, value in data.items()}
    marked, marked_missing = fill_placeholders(body, markers)
    for name, value in data.items():
        marked = marked.replace(f"\x00{name}\x00", value)
    assert marked == filled
    assert marked_missing == missing


# --------------------------------------------------------------------------- layout


def test_footer_carries_disclaimer_and_template_identification() -> None:
    doc = _render(_template(), FULL)

    identification = "Template tpl-payment-reminder v2 (en); disclaimer disc-general v2"
    expected_disclaimer = disclaimer_text("disc-general", 2)
    assert expected_disclaimer is not None
    assert doc.text.endswith(identification)
    assert expected_disclaimer in doc.text
    pdf_text = _pdf_text(doc.pdf)
    assert identification in pdf_text
    assert "General disclaimer, version 2" in pdf_text


def test_template_without_disclaimer_says_so() -> None:
    template = _template(disclaimer_id=None, disclaimer_version=None)
    doc = render(template, FULL, disclaimer_text=None)

    assert doc.text.endswith("Template tpl-payment-reminder v2 (en); no disclaimer")
    assert "disclaimer," not in doc.text


def test_empty_body_uses_the_communication_type_as_title() -> None:
    doc = _render(_template(""), {})

    assert doc.text.startswith("Payment Reminder\n")
    assert doc.missing_fields == ()


def test_long_body_spans_pages_and_rendering_is_deterministic() -> None:
    body = "Statement\n" + "\n".join(f"line {i}: {{amount_due}}" for i in range(140))
    first = _render(_template(body), FULL)
    second = _render(_template(body), FULL)

    assert first == second
    reader = PdfReader(io.BytesIO(first.pdf), strict=True)
    assert len(reader.pages) == 3
    assert "Page 3 of 3" in reader.pages[2].extract_text()


# --------------------------------------------------------------------------- disclaimers


def test_disclaimer_version_change_changes_the_document() -> None:
    v2 = _render(_template(disclaimer_version=2), FULL)
    v3 = _render(_template(disclaimer_version=3), FULL)

    assert v2.text != v3.text
    assert v2.pdf != v3.pdf
    assert "General disclaimer, version 2" in _pdf_text(v2.pdf)
    assert "General disclaimer, version 3" in _pdf_text(v3.pdf)
    assert "version 2" not in v3.text


def test_disclaimer_text_is_deterministic_and_differs_by_id_and_version() -> None:
    assert disclaimer_text(None, 1) is None
    assert disclaimer_text("disc-general", 1) == disclaimer_text("disc-general", 1)
    texts = {disclaimer_text(i, v) for i in ("disc-general", "disc-privacy") for v in range(1, 8)}
    assert len(texts) == 14
    privacy = disclaimer_text("disc-privacy", 1)
    assert privacy is not None
    assert privacy.startswith("Privacy disclaimer, version 1 (disc-privacy): ")
    assert disclaimer_text("disc-general", None) == disclaimer_text("disc-general", 1)


# --------------------------------------------------------------------------- simulator templates


def test_every_simulator_template_renders_with_its_required_fields() -> None:
    templates = generate(Scenario(seed=1, customers=1, events=0)).templates

    for template in templates:
        data = {name: f"value-of-{name}" for name in template.required_fields}
        data["customer_id"] = "c-00001"
        doc = _render(template, data)
        assert doc.missing_fields == (), template
        assert doc.pdf.startswith(b"%PDF-1.4")
        for name in template.required_fields:
            if f"{{{name}}}" in template.body:
                assert f"value-of-{name}" in doc.text or name == "customer_id"
