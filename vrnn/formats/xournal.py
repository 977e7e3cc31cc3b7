"""Xournal++ notebooks (``.xopp``) and Xournal's older ``.xoj``.

Both are XML, gzip-compressed as the programs save them (a plain,
uncompressed file is read too, and so is the zip container of Xournal++'s
development builds, whose ``content.xml`` holds the same XML)::

    <xournal creator="Xournal++ 1.2.3" fileversion="4">
      <page width="595.27" height="841.89">
        <background type="solid" color="#ffffffff" style="lined"/>
        <layer>
          <stroke tool="pen" color="#000000ff" width="1.41 1.2 1.35 1.3">10 20 11 22 13 25</stroke>
          <stroke tool="highlighter" color="#ffff007f" width="8.5">...</stroke>
          <text font="Sans" size="12" x="72" y="72">typed text</text>
        </layer>
      </page>
    </xournal>

What is read: one :class:`~vrnn.ink.Ink` per page that has pen strokes, with
``meta = {"page": <1-based page number>, "page_width", "page_height"}``.
Its strokes are the page's ``tool="pen"`` strokes (a missing ``tool`` counts as
pen, as Xournal++ does) of every layer, in layer and then document order,
which is the order they were written. Coordinates are the file's own: points
(1/72 inch) from the page's top-left corner, y down. ``width`` holds the
nominal pen width and, when pressure was recorded, one width per point after
it (Xournal wrote one per segment, ``n - 1``: the last is repeated); the ink's
``pressure`` is each point's width over the nominal width (MrWriter's
``pressures`` attribute, when present, holds the pressures themselves). When some strokes of a page
have pressure and others do not, those get ``1.0`` (they are drawn at the
nominal width); when none has, ``pressure`` is ``None``.

Left out: ``highlighter`` and ``eraser`` strokes (not handwriting), text,
images, LaTeX, backgrounds, colours and stroke timestamps (one per stroke,
not per point, so ``times`` is ``None``); pages with no pen stroke.

Refused with a one-line :class:`~vrnn.ink.InkFormatError`: truncated or
corrupt gzip, content inflating past :attr:`Limits.max_unpacked_bytes` (gzip
bombs), XML entity declarations, a root other than ``<xournal>`` /
``<MrWriter>``, a stroke with an odd number of coordinates, no coordinates,
non-numbers or NaN/inf in a stroke or its width, a file with no pen stroke.
"""

from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np

from vrnn.ink import Ink

from ._common import GZIP_MAGIC, Source, finite_float, gunzip_bounded, parse_floats
from ._xml import iterparse_xml, local_name

ROOTS = ("xournal", "MrWriter")
_SKIPPED_TOOLS = ("highlighter", "eraser")


def read_xournal(data: bytes, src: Source) -> list[Ink]:
    """Parse a ``.xopp`` / ``.xoj`` notebook into one ink per page with pen strokes."""
    if data[:2] == GZIP_MAGIC:
        data = gunzip_bounded(src, data)
    elif data[:4] == b"PK\x03\x04":
        data = _zip_content(data, src)
    return _parse(data, src)


def _zip_content(data: bytes, src: Source) -> bytes:
    """``content.xml`` of a zip-container ``.xopp``, inflated within the limits."""
    limit = src.limits.max_unpacked_bytes
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        info = archive.getinfo("content.xml")
    except KeyError:
        raise src.error("zip", "no content.xml member (not a Xournal++ zip)") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
        raise src.error("zip", f"not a valid zip archive ({exc})") from None
    if info.file_size > limit:
        raise src.error(
            "content.xml", f"expands to {info.file_size:,} bytes, over {limit:,} (Limits.max_unpacked_bytes)"
        )
    try:
        with archive.open(info) as handle:
            return handle.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise src.error("content.xml", f"cannot inflate: {exc}") from None


def _parse(data: bytes, src: Source) -> list[Ink]:
    inks: list[Ink] = []
    page_number = 0
    page_meta: dict = {}
    strokes: list[np.ndarray] = []
    pressures: list[np.ndarray | None] = []
    depth = 0
    parents: list = []
    for event, element in iterparse_xml(data, src):
        tag = local_name(element.tag)
        if event == "start":
            depth += 1
            parents.append(element)
            if depth == 1 and tag not in ROOTS:
                raise src.error("XML", f"root element is <{tag}>, not <xournal>")
            if tag == "page" and depth == 2:
                page_number += 1
                page_meta = {"page": page_number}
                for key in ("width", "height"):
                    value = finite_float(element.get(key))
                    if value is not None:
                        page_meta[f"page_{key}"] = value
                strokes, pressures = [], []
            continue
        depth -= 1
        parents.pop()
        if tag == "stroke":
            where = f"page {page_number}, stroke {len(strokes) + 1}"
            if (element.get("tool") or "pen") not in _SKIPPED_TOOLS:
                xy, pressure = _stroke(element, src, where)
                strokes.append(xy)
                pressures.append(pressure)
        elif tag == "page" and depth == 1:
            if strokes:
                inks.append(_page_ink(src, page_number, strokes, pressures, page_meta))
        # Drop every finished element: memory follows the open ones, not the file.
        if parents:
            parents[-1].remove(element)
    if not inks:
        raise src.error(None, "no pen strokes on any page (highlighter and eraser strokes are left out)")
    return inks


def _stroke(element, src: Source, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    tokens = (element.text or "").split()
    if not tokens:
        raise src.error(where, "stroke with no coordinates")
    if len(tokens) % 2:
        raise src.error(where, f"odd number of coordinates ({len(tokens)}); want x y x y ...")
    src.add_points(len(tokens) // 2, where)
    xy = parse_floats(src, where, tokens).reshape(-1, 2)
    widths = (element.get("width") or "").split()
    if not widths:
        raise src.error(where, "stroke without a width attribute")
    widths_values = parse_floats(src, f"{where} width", widths[:1] + widths[1 : len(xy) + 1])
    extra = element.get("pressures")
    if extra is not None:  # MrWriter: pressures beside the width
        per_point = parse_floats(src, f"{where} pressures", extra.split()[: len(xy)]) if extra.split() else None
    else:
        per_point = widths_values[1:] if len(widths_values) > 1 else None
    nominal = widths_values[0]
    if per_point is None or len(per_point) < len(xy) - 1 or nominal <= 0:
        return xy, None  # like Xournal++: a short width list means no pressure
    if len(per_point) < len(xy):  # Xournal: one width per segment
        per_point = np.append(per_point, per_point[-1:] if len(per_point) else [nominal])
    pressure = per_point[: len(xy)] / nominal if extra is None else per_point[: len(xy)]
    return xy, pressure


def _page_ink(src: Source, page: int, strokes, pressures, meta: dict) -> Ink:
    pressure = None
    if any(p is not None for p in pressures):
        pressure = [np.ones(len(s)) if p is None else p for s, p in zip(strokes, pressures)]
    return src.make_ink(f"page {page}", strokes, pressure=pressure, meta=dict(meta, source="xournal"))
