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

Parsed incrementally (each finished stroke is cleared), so memory follows the
points kept, not the size of the XML tree.
"""

from __future__ import annotations

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
    root_checked = False
    for event, element in iterparse_xml(data, src):
        tag = local_name(element.tag)
        if event == "start":
            if not root_checked:
                if tag != "WhiteboardCaptureSession":
                    raise src.error("XML", f"root element is <{tag}>, not <WhiteboardCaptureSession>")
                root_checked = True
            if tag == "Stroke":
                coords, stamps = [], []
            continue
        if tag == "Point":
            where = f"Stroke {len(strokes) + 1}, Point {len(coords) // 2 + 1}"
            x, y, t = element.get("x"), element.get("y"), element.get("time")
            if x is None or y is None:
                raise src.error(where, "Point without x or y attribute")
            if timed is None:
                timed = t is not None
            elif timed != (t is not None):
                raise src.error(where, "some Points have a time attribute and some do not")
            coords += (x, y)
            if t is not None:
                stamps.append(t)
            src.add_points(1, where)
        elif tag == "Stroke":
            where = f"Stroke {len(strokes) + 1}"
            if not coords:
                raise src.error(where, "empty stroke (no Point)")
            strokes.append(parse_floats(src, where, coords).reshape(-1, 2))
            if stamps:
                times.append(parse_floats(src, where, stamps))
            element.clear()  # the stroke's points are now in arrays
        elif tag == "Form" and element.get("writerID"):
            writer = element.get("writerID")
    if not strokes:
        raise src.error("StrokeSet", "no Stroke elements")
    return [src.make_ink("StrokeSet", strokes, times=times if timed else None, writer=writer)]
