"""A minimal, dependency-free PDF 1.4 writer for the emulator's rendered documents.

``pdf_document`` lays out a title, body lines and an optional footer on A4 pages and returns the
bytes of a complete, valid PDF file. It is pure (no I/O) and deterministic: the same input always
gives the same bytes (no creation dates, no random file identifiers).

What it supports:

- the standard Type1 fonts Helvetica (body, footer, page numbers) and Helvetica-Bold (title), with
  ``/WinAnsiEncoding``, so no font is embedded;
- A4 pages (595 x 842 pt) with 56 pt margins; the title in 16 pt bold, body text in 11 pt with a
  14 pt leading, the footer in 9 pt with an 11 pt leading;
- word wrapping measured with the Helvetica glyph widths (a word too long for a line is split);
- automatic extra pages when the text overflows, and "Page i of n" at the bottom of every page;
- a footer (e.g. a disclaimer) printed at the bottom of the last page, below a thin rule; when the
  last page has no room left for it a page is added (a footer taller than a page flows instead);
- text is sanitised: line breaks (``\\n``, ``\\r\\n``, ``\\r``) inside a line start a new line,
  tabs become spaces, other control characters are removed, characters outside Latin-1 are
  replaced with ``?``, and ``\\``, ``(`` and ``)`` are escaped (non-ASCII bytes are written as
  octal escapes, so the file body is ASCII apart from the binary marker comment in the header);
- a document information dictionary with ``/Title`` and ``/Producer`` (written as UTF-16BE, so the
  metadata title keeps characters the page text cannot show).

What it does not support: other fonts or font embedding, Unicode text on the page beyond Latin-1,
kerning, justification, images, links, compression of content streams, bold or italic inside the
body, tables, encryption or incremental updates.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PAGE_HEIGHT", "PAGE_WIDTH", "pdf_document"]

PAGE_WIDTH = 595
PAGE_HEIGHT = 842
MARGIN = 56
_TOP = PAGE_HEIGHT - MARGIN
_BOTTOM = MARGIN
_TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN

_TITLE_SIZE = 16
_TITLE_LEADING = 20
_TITLE_GAP = 10
_BODY_SIZE = 11
_BODY_LEADING = 14
_FOOTER_SIZE = 9
_FOOTER_LEADING = 11
_FOOTER_GAP = 8
_PAGE_NUMBER_SIZE = 9
_PAGE_NUMBER_BASELINE = 30

_REGULAR = "F1"
_BOLD = "F2"

# Helvetica advance widths (1/1000 em) for the printable ASCII range 32..126, from the Adobe AFM.
_ASCII_WIDTHS = (
    (278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278)
    + (556,) * 10
    + (278, 278, 584, 584, 584, 556, 1015)
    + (667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833)
    + (722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611)
    + (278, 278, 278, 469, 556, 333)
    + (556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833)
    + (556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500)
    + (334, 260, 334, 584)
)
# Latin-1 letters and symbols above 127 are measured conservatively (no glyph is wider).
_WIDE_WIDTH = 1000
# Helvetica-Bold is at most this much wider than Helvetica for any glyph we measure.
_BOLD_FACTOR = 1.25

_LINE_BREAK = re.compile(r"\r\n|[\r\n]")


def pdf_document(
    *,
    title: str,
    lines: Sequence[str],
    footer: str | None = None,
    producer: str = "air-exstream emulator",
) -> bytes:
    """Return a PDF file showing ``title``, then ``lines``, then ``footer`` on the last page."""
    pages = _layout(title=title, lines=lines, footer=footer)
    streams = [_content_stream(page, index + 1, len(pages)) for index, page in enumerate(pages)]
    return _serialise(streams, title=title, producer=producer)


# --------------------------------------------------------------------------- text handling


def _clean(text: str) -> str:
    """Text for one output line: tabs to spaces, controls dropped, non-Latin-1 as ``?``."""
    out: list[str] = []
    for char in text:
        if char == "\t":
            out.append(" ")
        elif unicodedata.category(char) == "Cc":
            continue
        elif ord(char) > 0xFF:
            out.append("?")
        else:
            out.append(char)
    return "".join(out)


def _split_lines(text: str) -> list[str]:
    return [_clean(part) for part in _LINE_BREAK.split(text)]


def _width(text: str, size: float, *, bold: bool = False) -> float:
    units = 0
    for char in text:
        code = ord(char)
        units += _ASCII_WIDTHS[code - 32] if 32 <= code <= 126 else _WIDE_WIDTH
    factor = _BOLD_FACTOR if bold else 1.0
    return units * size * factor / 1000


def _wrap(text: str, size: float, *, bold: bool = False) -> list[str]:
    """Break one cleaned line at spaces so that every piece fits the text width."""

    def fits(candidate: str) -> bool:
        return _width(candidate, size, bold=bold) <= _TEXT_WIDTH

    out: list[str] = []
    current = ""
    pending = ""
    for token in re.findall(r" +|[^ ]+", text):
        if token.startswith(" "):
            pending = token
            continue
        candidate = current + pending + token
        pending = ""
        if fits(candidate):
            current = candidate
            continue
        if current:
            out.append(current)
            current = ""
        while not fits(token):  # a word longer than a line: split it where it overflows
            cut = 1
            while cut < len(token) and fits(token[: cut + 1]):
                cut += 1
            out.append(token[:cut])
            token = token[cut:]
        current = token
    out.append(current)
    return out


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True, slots=True)
class _Text:
    font: str
    size: float
    x: float
    y: float
    text: str


@dataclass(slots=True)
class _Page:
    texts: list[_Text]
    rule_y: float | None = None


class _Flow:
    """Places lines top to bottom, starting new pages when a line does not fit."""

    def __init__(self) -> None:
        self.pages: list[_Page] = []
        self.y: float = _TOP
        self.new_page()

    def new_page(self) -> None:
        self.pages.append(_Page(texts=[]))
        self.y = _TOP

    @property
    def page(self) -> _Page:
        return self.pages[-1]

    def place(self, font: str, size: float, leading: float, text: str) -> None:
        if self.y - leading < _BOTTOM and self.page.texts:
            self.new_page()
        self.page.texts.append(_Text(font, size, MARGIN, self.y - size, text))
        self.y -= leading

    def place_footer(self, lines: list[str]) -> None:
        height = len(lines) * _FOOTER_LEADING + _FOOTER_GAP
        if height > _TOP - _BOTTOM:  # taller than a page: flow it like body text
            self.y -= _FOOTER_GAP
            for line in lines:
                self.place(_REGULAR, _FOOTER_SIZE, _FOOTER_LEADING, line)
            return
        if self.y - height < _BOTTOM:
            self.new_page()
        for index, line in enumerate(lines):
            baseline = _BOTTOM + 2 + (len(lines) - 1 - index) * _FOOTER_LEADING
            self.page.texts.append(_Text(_REGULAR, _FOOTER_SIZE, MARGIN, baseline, line))
        self.page.rule_y = _BOTTOM + len(lines) * _FOOTER_LEADING + _FOOTER_GAP / 2
        self.y = _BOTTOM


def _layout(*, title: str, lines: Sequence[str], footer: str | None) -> list[_Page]:
    flow = _Flow()
    title_lines = [
        piece
        for line in _split_lines(title)
        for piece in _wrap(line, _TITLE_SIZE, bold=True)
        if piece
    ]
    for piece in title_lines:
        flow.place(_BOLD, _TITLE_SIZE, _TITLE_LEADING, piece)
    if title_lines:
        flow.y -= _TITLE_GAP
    for line in lines:
        for part in _split_lines(line):
            for piece in _wrap(part, _BODY_SIZE):
                flow.place(_REGULAR, _BODY_SIZE, _BODY_LEADING, piece)
    if footer is not None:
        footer_lines = [
            piece for part in _split_lines(footer) for piece in _wrap(part, _FOOTER_SIZE)
        ]
        flow.place_footer(footer_lines)
    return flow.pages


# --------------------------------------------------------------------------- PDF syntax


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _pdf_string(text: str) -> str:
    """A literal string for the page: Latin-1 bytes, escaped, non-ASCII as octal escapes."""
    out: list[str] = ["("]
    for byte in text.encode("latin-1", errors="replace"):
        if byte in (0x5C, 0x28, 0x29):  # \ ( )
            out.append("\\" + chr(byte))
        elif 32 <= byte <= 126:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    out.append(")")
    return "".join(out)


def _text_string(text: str) -> str:
    """A text string for the document information dictionary (UTF-16BE with BOM, as hex)."""
    cleaned = "".join(ch for ch in text if unicodedata.category(ch) != "Cc")
    return "<FEFF" + cleaned.encode("utf-16-be", errors="replace").hex().upper() + ">"


def _content_stream(page: _Page, number: int, count: int) -> bytes:
    ops: list[str] = []
    if page.rule_y is not None:
        y = _number(page.rule_y)
        ops.append(f"0.5 w {MARGIN} {y} m {PAGE_WIDTH - MARGIN} {y} l S")
    ops.append("BT")
    font: tuple[str, float] | None = None
    for item in page.texts:
        if font != (item.font, item.size):
            font = (item.font, item.size)
            ops.append(f"/{item.font} {_number(item.size)} Tf")
        ops.append(f"1 0 0 1 {_number(item.x)} {_number(item.y)} Tm {_pdf_string(item.text)} Tj")
    label = f"Page {number} of {count}"
    x = (PAGE_WIDTH - _width(label, _PAGE_NUMBER_SIZE)) / 2
    ops.append(f"/{_REGULAR} {_PAGE_NUMBER_SIZE} Tf")
    ops.append(f"1 0 0 1 {_number(x)} {_PAGE_NUMBER_BASELINE} Tm {_pdf_string(label)} Tj")
    ops.append("ET")
    return ("\n".join(ops) + "\n").encode("ascii")


def _serialise(streams: list[bytes], *, title: str, producer: str) -> bytes:
    # Object numbers: 1 catalog, 2 page tree, 3-4 fonts, 5 info, then (page, content) pairs.
    first_page = 6
    page_refs = [first_page + 2 * index for index in range(len(streams))]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        (
            "<< /Type /Pages /Kids ["
            + " ".join(f"{ref} 0 R" for ref in page_refs)
            + f"] /Count {len(streams)} >>"
        ).encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        f"<< /Title {_text_string(title)} /Producer {_text_string(producer)} >>".encode("ascii"),
    ]
    for ref, stream in zip(page_refs, streams, strict=True):
        objects.append(
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}]"
                f" /Resources << /Font << /{_REGULAR} 3 0 R /{_BOLD} 4 0 R >> >>"
                f" /Contents {ref + 1} 0 R >>"
            ).encode("ascii")
        )
        objects.append(
            f"<< /Length {len(stream)} >>\nstream\n".encode("ascii") + stream + b"endstream"
        )

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref_offset = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode("ascii")
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("ascii")
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 5 0 R >>\n"
        f"startxref\n{xref_offset}\n%%EOF\n"
    ).encode("ascii")
    return bytes(out)
