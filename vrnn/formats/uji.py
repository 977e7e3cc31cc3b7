"""UJI Pen Characters (v1 and v2) text files.

Version 2 (``ujipenchars2.txt``), one sample per ``WORD`` block::

    // ASCII char: a                      comment lines start with //
    WORD a trn_UJI_W01-01                 character, then the session string
      NUMSTROKES 2                        optional here; if given, it must match
      POINTS 3 # 557 844 550 803 505 803  k points, then 2k numbers x y ...
      POINTS 1 # 600 900

Each block becomes one :class:`~vrnn.ink.Ink` with ``label`` = the character,
``writer`` = the writer id from the session string (``"W01"``; the whole
string when it holds no ``W<digits>``) and ``meta["session"]`` = that string.
Unknown keyword lines before the first ``WORD`` are taken for header lines and
skipped; after it they are errors.

Version 1 (``UJIpenchars-wNN``) mimics the UNIPEN-style Pendigits files::

    .SEGMENT CHARACTER 0 ? "a"            a new sample; label = the quoted text
    .PEN_DOWN
     557 844                              one point per line (x y [more columns])
    .PEN_UP

Other dot-keywords (and the free text that follows them) are skipped; the
writer comes from a ``.WRITER_ID`` line, else from ``-wNN`` in the file name.

Coordinates are tablet units, y down, no timestamps (``times`` is ``None``).
Counts that disagree with the data, empty strokes, samples without strokes and
NaN/inf are errors. Lines may end in LF, CRLF or CR.
"""

from __future__ import annotations

import re

import numpy as np

from vrnn.ink import Ink

from ._common import Source, parse_floats, snippet, split_lines

_WRITER = re.compile(r"W\d+")
_FILE_WRITER = re.compile(r"-w(\d+)", re.IGNORECASE)
_QUOTED_LABEL = re.compile(r'"((?:[^"\\]|\\.)*)"')
# A coordinate in a sane file is at most this long; a longer POINTS line is refused
# before it is split, so one bad line cannot allocate millions of tokens.
_MAX_CHARS_PER_NUMBER = 64


def read_uji(data: bytes, src: Source) -> list[Ink]:
    """Parse a UJI Pen Characters file (v2 ``WORD`` blocks or v1 UNIPEN style)."""
    lines = split_lines(src.decode_utf8(data))
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("//"):
            if stripped.startswith("."):
                return _read_unipen(lines, src)
            break
    return _read_word_blocks(lines, src)


def _parse_int(src: Source, where: str, token: str, what: str) -> int:
    if not token.isascii() or not token.isdigit() or len(token) > 9:
        raise src.error(where, f"{what} must be a non-negative integer, got {snippet(token)}")
    return int(token)


def _split_keyword(line: str) -> tuple[str, str]:
    """``("KEYWORD", "rest of the line")`` for a stripped, non-empty line (any whitespace between)."""
    parts = line.split(None, 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


class _Sample:
    """One ``WORD`` block while it is being read."""

    def __init__(self, line: int, label: str, session: str | None) -> None:
        self.line = line
        self.label = label
        self.session = session
        self.numstrokes: int | None = None
        self.strokes: list[np.ndarray] = []

    @property
    def where(self) -> str:
        return f"WORD {self.label} at line {self.line}"


def _read_word_blocks(lines: list[str], src: Source) -> list[Ink]:
    inks: list[Ink] = []
    sample: _Sample | None = None

    def finish(s: _Sample | None) -> None:
        if s is None:
            return
        if s.numstrokes is not None and len(s.strokes) != s.numstrokes:
            raise src.error(s.where, f"NUMSTROKES {s.numstrokes} but {len(s.strokes)} POINTS lines")
        writer = None
        if s.session is not None:
            match = _WRITER.search(s.session)
            writer = match.group(0) if match else s.session
        meta = {"session": s.session} if s.session is not None else {}
        inks.append(src.make_ink(s.where, s.strokes, label=s.label, writer=writer, meta=meta))

    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        where = f"line {number}"
        keyword, rest = _split_keyword(stripped)
        if keyword == "WORD":
            finish(sample)
            parts = rest.split()
            if not parts:
                raise src.error(where, "WORD without a character")
            sample = _Sample(number, parts[0], parts[1] if len(parts) > 1 else None)
        elif keyword == "NUMSTROKES":
            if sample is None:
                raise src.error(where, "NUMSTROKES before any WORD")
            if sample.numstrokes is not None or sample.strokes:
                raise src.error(where, "NUMSTROKES must come once, right after WORD")
            sample.numstrokes = _parse_int(src, where, rest, "NUMSTROKES")
        elif keyword == "POINTS":
            if sample is None:
                raise src.error(where, "POINTS before any WORD")
            if sample.numstrokes is not None and len(sample.strokes) >= sample.numstrokes:
                raise src.error(where, f"more POINTS lines than NUMSTROKES {sample.numstrokes} of {sample.where}")
            sample.strokes.append(_parse_points_line(src, where, rest))
        elif sample is None:
            continue  # a header line of some other version of the files
        else:
            raise src.error(where, f"unexpected line starting {snippet(keyword)} (want WORD, NUMSTROKES or POINTS)")
    finish(sample)
    if not inks:
        raise src.error(None, "no WORD blocks found (not a UJI Pen Characters file?)")
    return inks


def _parse_points_line(src: Source, where: str, rest: str) -> np.ndarray:
    """``k # x1 y1 ... xk yk`` (the part after ``POINTS``) as a ``(k, 2)`` array."""
    count_text, hash_mark, numbers = rest.partition("#")
    if not hash_mark:
        raise src.error(where, "POINTS line without '#'")
    k = _parse_int(src, where, count_text.strip(), "POINTS count")
    if k == 0:
        raise src.error(where, "empty stroke (POINTS 0)")
    src.add_points(k, where)
    if len(numbers) > 2 * k * _MAX_CHARS_PER_NUMBER + 16:
        raise src.error(where, f"POINTS {k} but the line is far too long for {k} points")
    tokens = numbers.split()
    if len(tokens) != 2 * k:
        raise src.error(where, f"POINTS {k} but {len(tokens)} numbers follow (want {2 * k})")
    return parse_floats(src, where, tokens).reshape(k, 2)


def _read_unipen(lines: list[str], src: Source) -> list[Ink]:
    """The v1 layout: ``.SEGMENT`` starts a sample, ``.PEN_DOWN`` / ``.PEN_UP`` wrap a stroke."""
    match = _FILE_WRITER.search(src.name)
    file_writer = f"W{match.group(1)}" if match else None
    writer_id: str | None = None
    inks: list[Ink] = []
    sample: dict | None = None
    stroke: list[str] | None = None  # number tokens of the open stroke
    stroke_line = 0

    def finish(s: dict | None) -> None:
        if s is not None:
            writer = writer_id or file_writer
            inks.append(src.make_ink(s["where"], s["strokes"], label=s["label"], writer=writer))

    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        where = f"line {number}"
        if stripped.startswith("."):
            keyword, rest = _split_keyword(stripped)
            if stroke is not None and keyword != ".PEN_UP":
                raise src.error(where, f"{snippet(keyword)} inside a stroke (missing .PEN_UP for line {stroke_line})")
            if keyword == ".SEGMENT":
                finish(sample)
                labels = _QUOTED_LABEL.findall(rest)
                label = labels[-1] if labels else None
                sample = {"where": f".SEGMENT at line {number}", "label": label, "strokes": []}
            elif keyword == ".PEN_DOWN":
                if sample is None:
                    raise src.error(where, ".PEN_DOWN before any .SEGMENT")
                stroke, stroke_line = [], number
            elif keyword == ".PEN_UP":
                if stroke is None:
                    raise src.error(where, ".PEN_UP without .PEN_DOWN")
                if not stroke:
                    raise src.error(where, f"empty stroke (.PEN_DOWN at line {stroke_line})")
                numbers = parse_floats(src, f"stroke from line {stroke_line}", stroke)
                sample["strokes"].append(numbers.reshape(-1, 2))
                stroke = None
            elif keyword == ".WRITER_ID":
                writer_id = rest.strip() or None
            continue  # other keywords, and their free text below, are not ink
        if stroke is None:
            continue  # free text of the keyword above
        tokens = stripped.split()
        if len(tokens) < 2 or len(stripped) > 16 * _MAX_CHARS_PER_NUMBER:
            raise src.error(where, f"want a point 'x y', got {snippet(stripped)}")
        src.add_points(1, where)
        stroke += tokens[:2]  # parsed all at once at .PEN_UP
    if stroke is not None:
        raise src.error(f"line {stroke_line}", ".PEN_DOWN without .PEN_UP")
    finish(sample)
    if not inks:
        raise src.error(None, "no .SEGMENT samples found")
    return inks
