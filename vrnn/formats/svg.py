"""SVG pictures of inks: one ``<path>`` per stroke, inks stacked top to bottom.

Each ink is moved so that its bounding box starts at the left margin, below
the previous ink with a gap of a quarter of the tallest ink; the ``viewBox``
fits the result with a small margin, at any scale of coordinates. SVG's y axis points down, like ink's, so no
flip is needed. Single-point strokes are drawn as dots (round caps on a
zero-length segment). An ink's label, when set, is its ``<title>`` (a tooltip).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import numpy as np

from vrnn.ink import Ink


def _number(value: float) -> str:
    return f"{value:.6g}"


def _path_data(points: np.ndarray) -> str:
    coords = [f"{_number(x)} {_number(y)}" for x, y in points]
    if len(coords) == 1:
        return f"M{coords[0]} l0 0"
    return "M" + coords[0] + " L" + " ".join(coords[1:])


def ink_to_svg(inks: list[Ink] | Ink, *, stroke_width: float | None = None, color: str = "black") -> str:
    """An SVG document (text) drawing ``inks``; ``stroke_width`` defaults to 1/150 of an ink's size."""
    if isinstance(inks, Ink):
        inks = [inks]
    boxes = [ink.bounds() for ink in inks]
    widths = [x1 - x0 for x0, _, x1, _ in boxes]
    heights = [y1 - y0 for _, y0, _, y1 in boxes]
    scale = max(heights, default=0.0) or max(widths, default=0.0) or 1.0  # the tallest ink (or widest)
    gap = 0.25 * scale
    groups, top = [], 0.0
    for ink, (x0, y0, _, _), height in zip(inks, boxes, heights, strict=True):
        shift = np.array([-x0, top - y0])
        paths = [f'<path d="{_path_data(np.asarray(stroke) + shift)}"/>' for stroke in ink.strokes if len(stroke)]
        label = "".join(ch for ch in ink.label or "" if ch.isprintable())  # XML forbids most controls
        title = f"<title>{escape(label)}</title>" if label else ""
        groups.append(f"<g>{title}{''.join(paths)}</g>")
        top += height + gap
    width = max(widths, default=0.0) or scale
    height = max(top - gap, 0.0) or scale
    if stroke_width is None:
        stroke_width = max(scale, width) / 150.0
    margin = gap / 2 + stroke_width
    view_box = " ".join(_number(v) for v in (-margin, -margin, width + 2 * margin, height + 2 * margin))
    stroke_color = escape(color, {'"': "&quot;"})
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view_box}">\n'
        f'<g fill="none" stroke="{stroke_color}" stroke-width="{_number(stroke_width)}" '
        'stroke-linecap="round" stroke-linejoin="round">\n' + "\n".join(groups) + "\n</g>\n</svg>\n"
    )
