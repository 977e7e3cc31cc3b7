"""This project's own JSON ink format (``"json"``), version 1.

Schema::

    {
      "format": "vrnn-ink",           required, exactly this
      "version": 1,                   required; newer versions are refused
      "inks": [                       required list, may be empty
        {
          "strokes": [                required list of strokes (may be empty)
            [[x, y], [x, y], ...],    each a non-empty list of [x, y] pairs
            ...
          ],
          "times": [[t, ...], ...],   optional: null or one list of seconds per
                                      stroke, as long as the stroke
          "pressure": [[p, ...], ...], optional: null or one list of pen pressures
                                      per stroke (1.0 = full), as long as the stroke
          "label": "text" | null,     optional
          "writer": "id" | null,      optional
          "meta": {...}               optional: an object of plain values
        },
        ...
      ]
    }

Coordinates are in the ink's own units, y down, like :class:`~vrnn.ink.Ink`.
Numbers are written with Python's shortest round-trip ``repr``, so reading a
written file gives back bit-identical float64 arrays. Unknown keys are ignored
(forward compatible); ``meta`` keeps only string / number / bool / null values
when written. One ink per line keeps files diffable.
"""

from __future__ import annotations

import json
import math

import numpy as np

from vrnn.ink import Ink

from ._common import Source, finite_or_error, snippet

FORMAT_NAME = "vrnn-ink"
VERSION = 1


# ------------------------------------------------------------------ writing
def _plain_meta(meta: dict) -> dict:
    """The JSON-safe part of ``meta``: string keys with str / bool / int / finite float / None values."""
    out = {}
    for key, value in meta.items():
        if not isinstance(key, str):
            continue
        if isinstance(value, (np.bool_, np.integer, np.floating)):
            value = value.item()
        if value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value)):
            out[key] = value
    return out


def _ink_record(ink: Ink) -> dict:
    record = {
        "strokes": [np.asarray(s, dtype=np.float64).tolist() for s in ink.strokes],
        "times": None if ink.times is None else [np.asarray(t, dtype=np.float64).tolist() for t in ink.times],
        "label": ink.label,
        "writer": ink.writer,
    }
    if ink.pressure is not None:  # written only when present: older readers ignore it anyway
        record["pressure"] = [np.asarray(p, dtype=np.float64).tolist() for p in ink.pressure]
    meta = _plain_meta(ink.meta)
    if meta:
        record["meta"] = meta
    return record


def ink_to_json_bytes(inks: list[Ink] | Ink) -> bytes:
    """``inks`` as a UTF-8 ``vrnn-ink`` JSON document (exact round trip through ``read_ink``)."""
    if isinstance(inks, Ink):
        inks = [inks]
    records = [_ink_record(ink) for ink in inks]
    try:
        return _document(records, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in a label (JSON can carry one): escape everything
        return _document(records, ensure_ascii=True).encode("ascii")


def _document(records: list[dict], *, ensure_ascii: bool) -> str:
    lines = [json.dumps(r, ensure_ascii=ensure_ascii, allow_nan=False, separators=(",", ":")) for r in records]
    head = f'{{"format":"{FORMAT_NAME}","version":{VERSION},"inks":['
    return head + ("\n" + ",\n".join(lines) + "\n" if lines else "") + "]}\n"


# ------------------------------------------------------------------ reading
def read_json(data: bytes, src: Source) -> list[Ink]:
    """Parse a ``vrnn-ink`` JSON document."""
    doc = src.load_json(data)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise src.error("JSON", f'not a vrnn-ink document (want {{"format": "{FORMAT_NAME}", ...}})')
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise src.error("JSON", f"'version' must be an integer, got {snippet(version)}")
    if version != VERSION:
        raise src.error("JSON", f"version {version} is not supported (this library reads version {VERSION})")
    records = doc.get("inks")
    if not isinstance(records, list):
        raise src.error("JSON", "'inks' must be a list")
    return [_ink(record, src, f"inks[{i}]") for i, record in enumerate(records)]


def _ink(record: object, src: Source, where: str) -> Ink:
    if not isinstance(record, dict):
        raise src.error(where, "want an object")
    strokes = record.get("strokes")
    if not isinstance(strokes, list):
        raise src.error(where, "'strokes' must be a list")
    arrays = [_array(s, src, f"{where}.strokes[{j}]", pairs=True) for j, s in enumerate(strokes)]
    times = record.get("times")
    if times is not None:
        if not isinstance(times, list) or len(times) != len(arrays):
            raise src.error(where, "'times' must be null or one list per stroke")
        times = [_array(t, src, f"{where}.times[{j}]", pairs=False) for j, t in enumerate(times)]
    pressure = record.get("pressure")
    if pressure is not None:
        if not isinstance(pressure, list) or len(pressure) != len(arrays):
            raise src.error(where, "'pressure' must be null or one list per stroke")
        pressure = [_array(p, src, f"{where}.pressure[{j}]", pairs=False) for j, p in enumerate(pressure)]
    texts = {}
    for key in ("label", "writer"):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise src.error(where, f"'{key}' must be a string or null, got {snippet(value)}")
        texts[key] = value
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise src.error(where, "'meta' must be an object")
    return src.make_ink(where, arrays, times=times, pressure=pressure, meta=meta, allow_empty=True, **texts)


def _array(value: object, src: Source, where: str, *, pairs: bool) -> np.ndarray:
    """A list of ``[x, y]`` pairs (``pairs``) or of numbers as a finite float64 array."""
    if not isinstance(value, list) or not value:
        raise src.error(where, "must be a non-empty list")
    try:
        array = np.asarray(value)
    except ValueError:
        raise src.error(where, "ragged list") from None
    want = 2 if pairs else 1
    if array.ndim != want or (pairs and array.shape[1] != 2):
        raise src.error(where, "want a list of [x, y] pairs" if pairs else "want a list of numbers")
    if array.dtype.kind not in "iuf":
        raise src.error(where, "values must be numbers")
    if pairs:
        src.add_points(len(array), where)
    return finite_or_error(src, where, array.astype(np.float64))
