"""The PDF writer, checked structurally and by reading the files back with pypdf (strict mode)."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from streams.emulator.pdf import PAGE_HEIGHT, PAGE_WIDTH, pdf_document

pytestmark = pytest.mark.unit


def _read(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf), strict=True)


def _texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in _read(pdf).pages]


def _numbered(count: int) -> list[str]:
    return [f"Line number {i:03d}" for i in range(count)]


# --------------------------------------------------------------------------- basics


def test_minimal_document_is_a_valid_pdf_with_title_and_page_number() -> None:
    pdf = pdf_document(title="Payment Reminder", lines=["Dear customer c-1,", "amount due: 12.50"])

    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.endswith(b"%%EOF\n")
    reader = _read(pdf)
    assert len(reader.pages) == 1
    page = reader.pages[0]
    assert (float(page.mediabox.width), float(page.mediabox.height)) == (PAGE_WIDTH, PAGE_HEIGHT)
    text = page.extract_text()
    assert "Payment Reminder" in text
    assert "Dear customer c-1," in text
    assert "amount due: 12.50" in text
    assert "Page 1 of 1" in text


def test_metadata_has_title_and_producer_but_no_dates() -> None:
    pdf = pdf_document(title="Invoice (March) – Zoë ✓", lines=[], producer="test producer")

    metadata = _read(pdf).metadata
    assert metadata is not None
    assert metadata.title == "Invoice (March) – Zoë ✓"
    assert metadata.producer == "test producer"
    assert b"/CreationDate" not in pdf
    assert b"/ModDate" not in pdf


def test_fonts_are_standard_helvetica_with_winansi_encoding() -> None:
    pdf = pdf_document(title="T", lines=["x"])

    resources = _read(pdf).pages[0]["/Resources"].get_object()
    assert isinstance(resources, DictionaryObject)
    fonts = resources["/Font"].get_object()
    assert isinstance(fonts, DictionaryObject)
    base_fonts: set[str] = set()
    encodings: set[str] = set()
    for name in fonts:
        font = fonts[name].get_object()
        assert isinstance(font, DictionaryObject)
        base_fonts.add(str(font["/BaseFont"]))
        encodings.add(str(font["/Encoding"]))
    assert base_fonts == {"/Helvetica", "/Helvetica-Bold"}
    assert encodings == {"/WinAnsiEncoding"}


def test_empty_document_still_has_one_page() -> None:
    pdf = pdf_document(title="", lines=[])

    texts = _texts(pdf)
    assert len(texts) == 1
    assert "Page 1 of 1" in texts[0]


def test_same_input_gives_same_bytes_and_other_input_other_bytes() -> None:
    first = pdf_document(title="Renewal", lines=_numbered(120), footer="Disclaimer v2")
    second = pdf_document(title="Renewal", lines=_numbered(120), footer="Disclaimer v2")
    other = pdf_document(title="Renewal", lines=_numbered(120), footer="Disclaimer v3")

    assert first == second
    assert first != other


# --------------------------------------------------------------------------- pagination


@pytest.mark.parametrize(
    ("count", "pages"),
    [(0, 1), (1, 1), (50, 1), (51, 2), (102, 2), (103, 3), (200, 4)],
)
def test_page_count_follows_the_number_of_lines(count: int, pages: int) -> None:
    # 50 body lines fit under the title on page 1, 52 on each following page.
    pdf = pdf_document(title="Statement", lines=_numbered(count))

    texts = _texts(pdf)
    assert len(texts) == pages
    for index, text in enumerate(texts, start=1):
        assert f"Page {index} of {pages}" in text
    joined = "\n".join(texts)
    for line in _numbered(count):
        assert line in joined
    assert "Statement" in texts[0]


def test_lines_keep_their_order_across_pages() -> None:
    lines = _numbered(200)
    joined = "\n".join(_texts(pdf_document(title="T", lines=lines)))

    positions = [joined.index(line) for line in lines]
    assert positions == sorted(positions)


def test_long_lines_are_wrapped_at_word_boundaries() -> None:
    words = [f"word{i}" for i in range(200)]
    pdf = pdf_document(title="T", lines=[" ".join(words)])

    text = _texts(pdf)[0]
    body = [line for line in text.splitlines() if line.startswith("word")]
    assert len(body) > 1
    assert all(len(line) <= 100 for line in body)
    assert " ".join(body).split() == words  # every word once, in order, none cut


def test_a_word_longer_than_a_line_is_split_without_losing_characters() -> None:
    word = "".join(chr(ord("a") + i % 26) for i in range(400))
    pdf = pdf_document(title="T", lines=[word])

    text = _texts(pdf)[0]
    pieces = [line for line in text.splitlines() if line and line[0].islower()]
    assert len(pieces) > 1
    assert "".join(pieces) == word


def test_a_long_title_is_wrapped_in_bold() -> None:
    title = " ".join(f"Heading{i}" for i in range(30))
    pdf = pdf_document(title=title, lines=["body"])

    lines = _texts(pdf)[0].splitlines()
    heading = [line for line in lines if line.startswith("Heading")]
    assert len(heading) > 1
    assert " ".join(heading) == title
    assert pdf.count(b"/F2 16 Tf") == 1


def test_wide_glyphs_wrap_sooner_than_narrow_ones() -> None:
    narrow = _texts(pdf_document(title="T", lines=["i " * 150]))[0]
    wide = _texts(pdf_document(title="T", lines=["W " * 150]))[0]

    assert len(wide.splitlines()) > len(narrow.splitlines())


# --------------------------------------------------------------------------- footer


def test_footer_is_on_the_last_page_only() -> None:
    footer = "Disclaimer: this is not an offer."
    texts = _texts(pdf_document(title="T", lines=_numbered(120), footer=footer))

    assert len(texts) == 3
    assert footer in texts[-1]
    assert all("Disclaimer" not in text for text in texts[:-1])


def test_footer_that_does_not_fit_moves_to_a_new_page() -> None:
    footer = "Disclaimer: this is not an offer."
    fits = _texts(pdf_document(title="T", lines=_numbered(45), footer=footer))
    overflows = _texts(pdf_document(title="T", lines=_numbered(50), footer=footer))

    assert len(fits) == 1
    assert footer in fits[0]
    assert len(overflows) == 2
    assert footer in overflows[1]
    assert "Page 2 of 2" in overflows[1]


def test_long_footer_is_wrapped_and_a_footer_taller_than_a_page_flows() -> None:
    footer = " ".join(f"clause{i}" for i in range(1500))
    texts = _texts(pdf_document(title="T", lines=["body"], footer=footer))

    assert len(texts) >= 2
    assert " ".join(texts).split().count("clause1499") == 1
    words = [w for text in texts for w in text.split() if w.startswith("clause")]
    assert words == footer.split()


# --------------------------------------------------------------------------- text encoding


def test_parentheses_and_backslashes_round_trip() -> None:
    tricky = [r"a (b) c", "unbalanced (((", "closing ))) only", r"back\slash \\ and \n", r"\(\)"]
    pdf = pdf_document(title=r"Title (with) \ chars", lines=tricky)

    text = _texts(pdf)[0]
    assert r"Title (with) \ chars" in text
    for line in tricky:
        assert line in text
    assert b"(a \\(b\\) c)" in pdf


def test_latin1_is_kept_and_other_characters_become_question_marks() -> None:
    pdf = pdf_document(title="Zoë", lines=["café über Straße ±½", "price €100 日本 🙂"])

    text = _texts(pdf)[0]
    assert "Zoë" in text
    assert "café über Straße ±½" in text
    assert "price ?100 ?? ?" in text
    body = pdf.split(b"stream\n", 1)[1]
    assert all(byte < 0x80 for byte in body)  # page text is written with octal escapes


def test_control_characters_are_removed_and_line_breaks_start_new_lines() -> None:
    pdf = pdf_document(
        title="T", lines=["a\x00b\x07c\x1bd\x7fe\x85f", "tab\there", "one\ntwo\r\nthree"]
    )

    text = _texts(pdf)[0]
    assert "abcdef" in text
    assert "tab here" in text
    lines = text.splitlines()
    assert {"one", "two", "three"} <= set(lines)


# --------------------------------------------------------------------------- file structure


def _xref_entries(pdf: bytes) -> tuple[int, list[int]]:
    tail = re.search(rb"startxref\n(\d+)\n%%EOF\n$", pdf)
    assert tail is not None
    startxref = int(tail.group(1))
    assert pdf[startxref:].startswith(b"xref\n")
    header = re.match(rb"xref\n0 (\d+)\n", pdf[startxref:])
    assert header is not None
    size = int(header.group(1))
    table_start = startxref + header.end()
    rows = [pdf[table_start + 20 * i : table_start + 20 * (i + 1)] for i in range(size)]
    assert rows[0] == b"0000000000 65535 f \n"
    offsets = []
    for row in rows[1:]:
        assert re.fullmatch(rb"\d{10} 00000 n \n", row), row
        offsets.append(int(row[:10]))
    return size, offsets


def test_xref_offsets_point_at_their_objects() -> None:
    pdf = pdf_document(title="T", lines=_numbered(150), footer="F")

    size, offsets = _xref_entries(pdf)
    assert len(offsets) == size - 1
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(f"{number} 0 obj\n".encode())
    trailer = pdf[pdf.rindex(b"trailer") :]
    assert f"/Size {size}".encode() in trailer
    assert b"/Root 1 0 R" in trailer
    assert b"/Info 5 0 R" in trailer


def test_stream_lengths_are_exact() -> None:
    pdf = pdf_document(title="T", lines=_numbered(150), footer="F")

    streams = list(re.finditer(rb"<< /Length (\d+) >>\nstream\n", pdf))
    assert len(streams) == 3
    for match in streams:
        end = match.end() + int(match.group(1))
        assert pdf[end:].startswith(b"endstream")


# --------------------------------------------------------------------------- arbitrary input


_ANY_TEXT = st.text(max_size=300) | st.text(alphabet="()\\ \t\n\r\x00aW\u00e9\u20ac", max_size=300)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=_ANY_TEXT,
    lines=st.lists(_ANY_TEXT, max_size=70),
    footer=st.none() | _ANY_TEXT,
)
def test_arbitrary_text_always_gives_a_readable_pdf(
    title: str, lines: list[str], footer: str | None
) -> None:
    pdf = pdf_document(title=title, lines=lines, footer=footer)

    reader = _read(pdf)
    count = len(reader.pages)
    assert count >= 1
    assert f"Page 1 of {count}" in reader.pages[0].extract_text()
    size, offsets = _xref_entries(pdf)
    assert size == len(offsets) + 1
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(f"{number} 0 obj\n".encode())
    assert pdf == pdf_document(title=title, lines=lines, footer=footer)
