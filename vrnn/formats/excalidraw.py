"""Excalidraw scenes (``.excalidraw`` JSON, ``"type": "excalidraw"``).

::

    {"type": "excalidraw", "version": 2, "source": "https://excalidraw.com",
     "elements": [
       {"type": "freedraw", "id": "a1", "x": 100, "y": 50, "width": 40, "height": 12,
        "angle": 0, "points": [[0, 0], [3, 1], ...], "pressures": [0.5, 0.6, ...],
        "simulatePressure": false, "isDeleted": false, "frameId": null, ...},
       {"type": "rectangle", ...}, {"type": "frame", "id": "f1", "name": "Page 1", ...}],
     "appState": {...}, "files": {...}}

Handwriting is the ``freedraw`` elements, in the order of ``elements`` (the
scene's order, which is the drawing order unless elements were re-stacked).
Each element is one stroke:

- ``points`` are offsets from the element's ``x``, ``y``;
- ``angle`` (radians, clockwise on screen) rotates them about the element's
  centre, computed as Excalidraw does for freedraw
  (``getFreeDrawElementAbsoluteCoords``): the middle of the points' bounding box
  moved by ``x``, ``y`` (the same as ``x + width / 2`` only when no point has a
  negative offset);
- ``pressures`` (0..1, one per point) become the stroke's ``pressure``; they are
  empty when ``simulatePressure`` is true, and the ink's ``pressure`` is then
  ``None`` unless every stroke has them.

Coordinates are scene pixels, y down. Deleted elements (``isDeleted``) and
every other element type (shapes, arrows, text, images, embeds) are left out.

Frames: when freedraw elements sit in frames (``frameId`` naming a frame
element that is not deleted), each frame gives one ink, in the order of the
frame elements, with ``meta["frame"]`` = the frame's ``name`` (or its id), and
the freedraw outside every frame one more ink, first. Without frames the
whole scene is one ink. ``times`` is ``None`` (Excalidraw keeps no time per
point). ``"type": "excalidraw/clipboard"`` (a copied selection) reads the same.

Refused with a one-line :class:`~vrnn.ink.InkFormatError` naming the element:
invalid JSON, no ``elements`` list, an element that is not an object,
``points`` that is not a non-empty list of ``[x, y]`` number pairs, ``x``,
``y`` or ``angle`` that are not finite numbers, ``pressures`` that is not a
list of numbers as long as ``points``, NaN/inf, no freedraw element at all.
"""

from __future__ import annotations

import math

import numpy as np

from vrnn.ink import Ink

from ._common import Source, finite_or_error, snippet

DOCUMENT_TYPES = ("excalidraw", "excalidraw/clipboard")
_FRAME_TYPES = ("frame", "magicframe")


def read_excalidraw(data: bytes, src: Source) -> list[Ink]:
    """Parse an Excalidraw scene: one ink for the scene, or one per frame (module docstring)."""
    doc = src.load_json(data)
    if not isinstance(doc, dict) or doc.get("type") not in DOCUMENT_TYPES:
        raise src.error("JSON", 'not an Excalidraw scene (want {"type": "excalidraw", ...})')
    elements = doc.get("elements")
    if not isinstance(elements, list):
        raise src.error("JSON", "'elements' must be a list")
    frames: dict[str, str] = {}  # live frame id -> name, in element order
    for i, element in enumerate(elements):
        if not isinstance(element, dict):
            raise src.error(f"elements[{i}]", "want an object")
        if element.get("type") in _FRAME_TYPES and not element.get("isDeleted"):
            ident = element.get("id")
            if isinstance(ident, str):
                name = element.get("name")
                frames[ident] = name if isinstance(name, str) and name else ident
    groups: dict[str | None, list[tuple[np.ndarray, np.ndarray | None]]] = {}
    for i, element in enumerate(elements):
        if element.get("type") != "freedraw" or element.get("isDeleted"):
            continue
        frame = element.get("frameId")
        key = frame if isinstance(frame, str) and frame in frames else None
        groups.setdefault(key, []).append(_stroke(element, src, _where(i, element)))
    if not groups:
        raise src.error(None, "no freedraw elements (only freehand drawing is handwriting)")
    order = [None] + list(frames)
    inks = []
    for key in order:
        if key not in groups:
            continue
        strokes = [xy for xy, _ in groups[key]]
        pressures = [p for _, p in groups[key]]
        pressure = pressures if all(p is not None for p in pressures) else None
        meta = {"source": "excalidraw"}
        if key is not None:
            meta.update(frame=frames[key], frame_id=key)
        where = "scene" if key is None else f"frame {snippet(frames[key], 40)}"
        inks.append(src.make_ink(where, strokes, pressure=pressure, meta=meta))
    return inks


def _where(index: int, element: dict) -> str:
    ident = element.get("id")
    return f"elements[{index}]" + (f" (id {snippet(ident, 30)})" if isinstance(ident, str) else "")


def _finite_number(element: dict, key: str, default: float | None, src: Source, where: str) -> float:
    value = element.get(key, default)
    if value is None and default is not None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise src.error(where, f"'{key}' must be a finite number, got {snippet(value)}")
    return float(value)


def _stroke(element: dict, src: Source, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Absolute ``(n, 2)`` points of one freedraw element and its pressures (or ``None``)."""
    x = _finite_number(element, "x", None, src, where)
    y = _finite_number(element, "y", None, src, where)
    angle = _finite_number(element, "angle", 0.0, src, where)
    points = element.get("points")
    if not isinstance(points, list) or not points:
        raise src.error(where, f"'points' must be a non-empty list of [x, y] pairs, got {snippet(points)}")
    src.add_points(len(points), where)
    if not all(isinstance(p, list) and len(p) >= 2 for p in points):
        raise src.error(where, "'points' must be a list of [x, y] pairs")
    try:
        offsets = np.array([p[:2] for p in points])
    except (ValueError, TypeError):
        raise src.error(where, "'points' must be a list of [x, y] pairs") from None
    if offsets.dtype.kind not in "iuf" or offsets.shape != (len(points), 2):
        raise src.error(where, "point coordinates must be numbers")
    offsets = finite_or_error(src, where, offsets.astype(np.float64))
    xy = offsets + (x, y)
    if angle:
        # Excalidraw's freedraw centre: the middle of the points' box, moved to (x, y).
        centre = (offsets.min(axis=0) + offsets.max(axis=0)) / 2 + (x, y)
        cos, sin = math.cos(angle), math.sin(angle)
        d = xy - centre
        xy = np.column_stack([d[:, 0] * cos - d[:, 1] * sin, d[:, 0] * sin + d[:, 1] * cos]) + centre
    return xy, _pressures(element, len(points), src, where)


def _pressures(element: dict, n: int, src: Source, where: str) -> np.ndarray | None:
    pressures = element.get("pressures")
    if pressures is None or (isinstance(pressures, list) and not pressures):
        return None  # simulatePressure: Excalidraw derives the width from speed
    if not isinstance(pressures, list) or len(pressures) != n:
        raise src.error(where, f"'pressures' must be a list of {n} numbers (one per point), got {snippet(pressures)}")
    if not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in pressures):
        raise src.error(where, "'pressures' must hold numbers")
    return finite_or_error(src, where, np.asarray(pressures, dtype=np.float64))
