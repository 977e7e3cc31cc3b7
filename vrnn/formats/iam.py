"""IAM-OnDB ``lineStrokes`` XML: one text line of online handwriting per file.

::

    <WhiteboardCaptureSession>
      <WhiteboardDescription>...</WhiteboardDescription>
      <StrokeSet>
        <Stroke colour="black" start_time="769.05" end_time="769.64">
          <Point x="1073" y="1058" time="769.05"/>
          ...

The whole file is one :class:`~vrnn.ink.Ink`: every ``Stroke`` in document
order, ``Point`` ``x``/``y`` as written (whiteboard units, y down) and ``time``
in seconds. ``times`` is set when every point has a ``time`` and ``None`` when
none has; a mix is an error. The writer comes from ``<Form writerID=...>`` in
the ``original`` IAM files when present. A ``Stroke`` with no ``Point`` is an
error.

Parsed incrementally (each finished element is dropped), so memory follows
the points kept, not the size of the XML tree.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

import numpy as np

from vrnn.ink import Ink

from ._common import Source, parse_floats
from ._xml import iterparse_xml, local_name


def read_iam(data: bytes, src: Source) -> list[Ink]:
    """Parse an IAM-OnDB ``lineStrokes`` (or ``original``) XML file."""
    strokes: list[np.ndarray] = []
    times: list[np.ndarray] = []
    timed: bool | None = None  # whether points carry time, fixed by the first point
    writer: str | None = None
    coords: list[str] = []  # x, y, x, y, ... of the open stroke
    stamps: list[str] = []
    in_stroke = False
    open_elements: list[Element] = []
    for event, element in iterparse_xml(data, src):
        tag = element.tag
        if "}" in tag:
            tag = local_name(tag)
        if event == "start":
            open_elements.append(element)
            if len(open_elements) == 1:
                if tag != "WhiteboardCaptureSession":
                    raise src.error("XML", f"root element is <{tag}>, not <WhiteboardCaptureSession>")
            elif tag == "Stroke":
                if in_stroke:
                    raise src.error(f"Stroke {len(strokes) + 1}", "Stroke inside a Stroke")
                in_stroke, coords, stamps = True, [], []
            continue
        # A finished element is detached from its parent (always its only finished child),
        # so memory follows the open elements and the current stroke, not the whole file.
        open_elements.pop()
        if open_elements:
            open_elements[-1].remove(element)
        if tag == "Point":
            x, y, t = element.get("x"), element.get("y"), element.get("time")
            if x is None or y is None or not in_stroke or timed is not None and timed != (t is not None):
                raise src.error(
                    f"Stroke {len(strokes) + 1}, Point {len(coords) // 2 + 1}", _point_problem(x, y, t, in_stroke)
                )
            timed = t is not None
            coords += (x, y)
            if timed:
                stamps.append(t)
        elif tag == "Stroke":
            where = f"Stroke {len(strokes) + 1}"
            if not coords:
                raise src.error(where, "empty stroke (no Point)")
            src.add_points(len(coords) // 2, where)
            strokes.append(parse_floats(src, where, coords).reshape(-1, 2))
            if stamps:
                times.append(parse_floats(src, where, stamps))
            in_stroke = False
        elif tag == "Form" and element.get("writerID"):
            writer = element.get("writerID")
    if not strokes:
        raise src.error("StrokeSet", "no Stroke elements")
    return [src.make_ink("StrokeSet", strokes, times=times if timed else None, writer=writer)]


def _point_problem(x: str | None, y: str | None, t: str | None, in_stroke: bool) -> str:
    if not in_stroke:
        return "Point outside a Stroke"
    if x is None or y is None:
        return "Point without x or y attribute"
    return "some Points have a time attribute and some do not"
