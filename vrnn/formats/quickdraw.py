"""Quick, Draw! ``.ndjson``: one drawing per line.

::

    {"word": "cat", "countrycode": "US", "timestamp": "...", "recognized": true,
     "key_id": "5153...", "drawing": [[[x0, x1, ...], [y0, y1, ...]], ...]}

``drawing`` is a list of strokes, each either ``[xs, ys]`` (the simplified
files) or ``[xs, ys, ts]`` (the raw files, ``ts`` in milliseconds, converted to
seconds). Each line becomes one :class:`~vrnn.ink.Ink` with ``label`` = ``word``
and ``meta`` holding ``countrycode``, ``key_id``, ``recognized`` and
``timestamp`` when present; Quick, Draw! has no writer ids. Blank lines are
skipped. A drawing mixing strokes with and without times, an empty stroke,
non-numeric or NaN/inf values are errors naming the line.
"""

from __future__ import annotations

import json

import numpy as np

from vrnn.ink import Ink

from ._common import Source, finite_or_error, snippet, split_lines

_META_KEYS = ("countrycode", "key_id", "recognized", "timestamp")


def read_ndjson(data: bytes, src: Source) -> list[Ink]:
    """Parse a Quick, Draw! ``.ndjson`` file (simplified or raw)."""
    inks = []
    for number, line in enumerate(split_lines(src.decode_utf8(data)), 1):
        if line.strip():
            inks.append(_drawing(line, src, f"line {number}"))
    if not inks:
        raise src.error(None, "no drawings (empty file)")
    return inks


def _drawing(line: str, src: Source, where: str) -> Ink:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise src.error(where, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise src.error(where, "JSON nested too deeply") from None
    if not isinstance(record, dict):
        raise src.error(where, f"want a JSON object, got {type(record).__name__}")
    drawing = record.get("drawing")
    if not isinstance(drawing, list):
        raise src.error(where, "no 'drawing' list")
    strokes, times = [], []
    for number, stroke in enumerate(drawing, 1):
        here = f"{where}, stroke {number}"
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            raise src.error(here, "want [xs, ys] or [xs, ys, ts]")
        columns = _numeric_rows(stroke, src, here)
        if columns.shape[1] == 0:
            raise src.error(here, "empty stroke")
        src.add_points(columns.shape[1], here)
        strokes.append(columns[:2].T)
        if len(columns) == 3:
            times.append(columns[2] / 1000.0)  # milliseconds -> seconds
    if times and len(times) != len(strokes):
        raise src.error(where, "some strokes have times and some do not")
    label = record.get("word")
    if label is not None and not isinstance(label, str):
        raise src.error(where, f"'word' must be a string, got {snippet(label)}")
    meta = {key: record[key] for key in _META_KEYS if isinstance(record.get(key), (str, bool, int, float))}
    return src.make_ink(where, strokes, times=times or None, label=label, meta=meta)


def _numeric_rows(stroke: list, src: Source, where: str) -> np.ndarray:
    """``[xs, ys(, ts)]`` as a finite float ``(2 or 3, n)`` array; ragged or non-numeric is an error."""
    try:
        rows = np.asarray(stroke)
    except ValueError:
        raise src.error(where, "coordinate lists of different lengths") from None
    if rows.ndim != 2:
        raise src.error(where, "coordinate lists of different lengths or nested values")
    if rows.dtype.kind not in "iuf" and rows.size:  # bool, str, object (ints beyond int64) are refused
        raise src.error(where, "coordinates must be numbers")
    return finite_or_error(src, where, rows.astype(np.float64))
