"""Omniglot raw stroke files (Lake, Salakhutdinov and Tenenbaum 2015): one drawing per ``.txt``.

::

    START
    68.75,-25.859438,0
    68.75,-27.859438,140
    BREAK
    67.75,-41.859438,1152
    ...
    BREAK

``START`` opens the drawing, each ``x,y,t`` line is a point (``y`` pointing
**up**, ``t`` in milliseconds), ``BREAK`` ends every stroke (a pen lift), the last
one too: a drawing that does not end with ``BREAK`` is refused as truncated. Each drawing becomes one :class:`~vrnn.ink.Ink` with ``y``
flipped to point down (``y -> -y``) and ``times`` in seconds.

A ``.zip`` of drawings (as Omniglot ships them,
``<subset>/<Alphabet>/characterNN/<imageid>_<drawer>.txt``) gives one ink per
``.txt`` member in archive order; other members (``.DS_Store``, ``__MACOSX/``,
hidden files) are skipped. From such a path:

- ``label`` = ``"<Alphabet>/characterNN"``, e.g. ``"Latin/character01"``;
- ``writer`` = ``"omniglot-<Alphabet>-<drawer>"``, e.g. ``"omniglot-Latin-07"``.
  Omniglot numbers its 20 drawers (``_01`` .. ``_20``) per alphabet, so the same
  number in another alphabet is not known to be the same person and gets
  another writer id. The subset folder is not part of the id: the
  ``background_small1`` / ``small2`` zips are slices of one set and hold the
  same Latin files, drawn by the same people;
- ``meta``: ``alphabet``, ``character`` (its number), ``image_id``, ``drawer``,
  ``subset`` and ``path``; for the Latin alphabet also ``letter`` (``characterNN``
  is the NN-th lowercase letter, ``"a"`` .. ``"z"``: checked by rendering them).

A lone ``.txt`` whose name is just ``<imageid>_<drawer>.txt`` gets
``meta["drawer"]`` and ``meta["image_id"]`` but no ``writer`` or ``label``
(the alphabet is unknown).

Refused with a one-line :class:`~vrnn.ink.InkFormatError` naming the file,
member and line: no ``START``, no final ``BREAK``, a second ``START``, a point line without
exactly three numbers, NaN/inf, an empty stroke, a drawing with no point; for
zips: not a valid zip, encrypted members, more than ``_MAX_MEMBERS`` members,
declared sizes over :attr:`Limits.max_unpacked_bytes` (checked before anything
is inflated; reading stops there too), no ``.txt`` member.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
import zlib
from pathlib import PurePosixPath

import numpy as np

from vrnn.ink import Ink, InkFormatError

from ._common import Source, parse_floats, snippet, split_lines

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_MAX_MEMBERS = 100_000  # Omniglot's full background set has 19,280 drawings
_DRAWING_NAME = re.compile(r"(\d+)_(\d+)\.txt", re.IGNORECASE)
_CHARACTER = re.compile(r"character(\d+)", re.IGNORECASE)


def read_omniglot(data: bytes, src: Source) -> list[Ink]:
    """One ink per drawing: a single ``.txt`` drawing, or a ``.zip`` of them."""
    if data[:4] in ZIP_MAGIC:
        return _read_zip(data, src)
    return [parse_drawing(src.decode_utf8(data), src, None, src.name)]


def drawing_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The ``.txt`` members of an Omniglot zip (no folders, no hidden or ``__MACOSX`` files)."""
    members = []
    for info in archive.infolist():
        parts = PurePosixPath(info.filename).parts
        if info.is_dir() or not parts or not parts[-1].lower().endswith(".txt"):
            continue
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue
        members.append(info)
    return members


def _read_zip(data: bytes, src: Source) -> list[Ink]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
        raise src.error("zip", f"not a valid zip archive ({exc})") from None
    if len(infos) > _MAX_MEMBERS:
        raise src.error("zip", f"{len(infos):,} members, more than {_MAX_MEMBERS:,}")
    members = drawing_members(archive)
    if not members:
        raise src.error("zip", "no Omniglot .txt drawings in the archive")
    limit = src.limits.max_unpacked_bytes
    declared = sum(info.file_size for info in members)
    if declared > limit:
        raise src.error(
            "zip", f"drawings expand to {declared:,} bytes, over {limit:,} (Limits.max_unpacked_bytes)"
        )
    inks, total = [], 0
    for info in members:
        where = snippet(info.filename, 120).strip("'")
        if info.flag_bits & 0x1:
            raise src.error(where, "encrypted zip member")
        try:
            with archive.open(info) as handle:
                raw = handle.read(info.file_size + 1)  # never more than declared (+1 to see a lie)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
            raise src.error(where, f"cannot inflate: {exc}") from None
        total += len(raw)
        if len(raw) > info.file_size or total > limit:
            raise src.error(where, f"inflates past its declared size (Limits.max_unpacked_bytes {limit:,})")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise src.error(where, f"not UTF-8 text (offset {exc.start})") from None
        inks.append(parse_drawing(text, src, where, info.filename))
    return inks


def _identity(path: str) -> tuple[str | None, str | None, dict]:
    """``(label, writer, meta)`` from an Omniglot path ``.../<Alphabet>/characterNN/<id>_<drawer>.txt``."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    meta: dict = {"path": path}
    match = _DRAWING_NAME.fullmatch(parts[-1]) if parts else None
    if not match:
        return None, None, meta
    meta["image_id"], meta["drawer"] = match.group(1), int(match.group(2))
    character = _CHARACTER.fullmatch(parts[-2]) if len(parts) >= 3 else None
    if not character:
        return None, None, meta
    alphabet = parts[-3]
    meta.update(alphabet=alphabet, character=int(character.group(1)))
    if len(parts) >= 4:
        meta["subset"] = parts[-4]
    if alphabet == "Latin" and 1 <= meta["character"] <= 26:  # printed lowercase a..z, in order
        meta["letter"] = chr(ord("a") + meta["character"] - 1)
    label = f"{alphabet}/{parts[-2]}"
    return label, f"omniglot-{alphabet}-{meta['drawer']:02d}", meta


def parse_drawing(text: str, src: Source, member: str | None, path: str) -> Ink:
    """One drawing's text as an ink (y flipped to point down, times in seconds)."""
    label, writer, meta = _identity(path)
    where = member or "drawing"
    fast = _fast_parse(text)
    if fast is not None:
        strokes, times = fast
        src.add_points(sum(len(s) for s in strokes), where)
    else:  # the line-by-line path, which names the line of any problem
        strokes, times = _parse_lines(text, src, member)
    return src.make_ink(where, strokes, times=times, label=label, writer=writer, meta=meta)


def _fast_parse(text: str):
    """``(strokes, times)`` of a well-formed drawing in one numpy conversion, else ``None``."""
    tokens = text.split()
    if not tokens or tokens[0] != "START" or "START" in tokens[1:]:
        return None
    if tokens[-1] != "BREAK":
        return None
    ends = [i for i, token in enumerate(tokens) if token == "BREAK"]
    counts = np.diff([0] + ends) - 1
    if len(counts) == 0 or (counts < 1).any():
        return None
    points = [token for token in tokens[1:] if token != "BREAK"]
    joined = ",".join(points)
    if joined.count(",") != 3 * len(points) - 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a bad number stops the C parser early: caught by the length check
        try:
            values = np.fromstring(joined, dtype=np.float64, sep=",")
        except ValueError:
            return None
    if len(values) != 3 * len(points) or not np.isfinite(values).all():
        return None
    values = values.reshape(-1, 3)
    cuts = np.cumsum(counts)[:-1]
    xy = np.column_stack([values[:, 0], -values[:, 1]])
    return np.split(xy, cuts), np.split(values[:, 2] / 1000.0, cuts)


def _parse_lines(text: str, src: Source, member: str | None):
    prefix = f"{member}: " if member else ""
    started = False
    strokes: list[np.ndarray] = []
    times: list[np.ndarray] = []
    pending: list[str] = []  # point lines of the open stroke
    numbers: list[int] = []  # and their line numbers

    def close(line_number: int) -> None:
        if not pending:
            raise src.error(f"{prefix}line {line_number}", "empty stroke (BREAK with no point before it)")
        src.add_points(len(pending), f"{prefix}line {numbers[0]}")
        tokens = ",".join(pending).split(",")
        try:
            if len(tokens) != 3 * len(pending):
                raise ValueError
            values = parse_floats(src, "", [t.strip() for t in tokens]).reshape(-1, 3)
        except (ValueError, InkFormatError):
            raise _bad_point(src, prefix, pending, numbers) from None
        strokes.append(np.column_stack([values[:, 0], -values[:, 1]]))
        times.append(values[:, 2] / 1000.0)
        pending.clear()
        numbers.clear()

    for number, raw in enumerate(split_lines(text), 1):
        line = raw.strip()
        if not line:
            continue
        if line == "START":
            if started:
                raise src.error(f"{prefix}line {number}", "second START in one drawing")
            started = True
        elif not started:
            raise src.error(f"{prefix}line {number}", f"expected START, got {snippet(line)}")
        elif line == "BREAK":
            close(number)
        else:
            pending.append(line)
            numbers.append(number)
    if not started:
        raise src.error(prefix.rstrip(": ") or None, "no START line (not an Omniglot drawing)")
    if pending:
        raise src.error(f"{prefix}line {numbers[-1]}", "the drawing does not end with BREAK (cut off?)")
    return strokes, times


def _bad_point(src: Source, prefix: str, lines: list[str], numbers: list[int]) -> InkFormatError:
    """The error for the first point line of a stroke that is not three finite numbers."""
    for line, number in zip(lines, numbers):
        values = line.split(",")
        where = f"{prefix}line {number}"
        if len(values) != 3:
            return src.error(where, f"want x,y,t ({len(values)} values), got {snippet(line)}")
        try:
            parse_floats(src, where, [v.strip() for v in values])
        except InkFormatError as exc:
            return exc
    return src.error(f"{prefix}line {numbers[0]}", "bad point line")
