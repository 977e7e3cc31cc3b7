"""Render inks to PNG with Pillow: one ink, or a grid of cells.

A *cell* is either an :class:`~vrnn.ink.Ink` or a list of ``(Ink, colour)``
segments drawn together at one shared scale, e.g. a prompt in black followed by
model continuations in colours::

    render_inks_png([prefix, [(prefix, "black"), (cont, "tab:red")]], "out.png")

Colours are anything Pillow understands (``"black"``, ``"#1f77b4"``, ``(r, g, b)``)
plus the matplotlib ``"tab:*"`` names, so plots and PNGs can share a palette.
Lines are drawn at ``supersample`` times the size and downscaled, which gives
anti-aliased strokes without extra dependencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vrnn.ink import Ink

Color = str | tuple[int, int, int]
Segment = tuple[Ink, Color]
Cell = Ink | Sequence[Segment]

#: The matplotlib "tab10" palette: distinct colours for continuations / samples.
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
_TAB_NAMES = ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan")
_NAMED = {f"tab:{n}": c for n, c in zip(_TAB_NAMES, PALETTE)}


def _is_single_color(c) -> bool:
    """A colour name, or an ``(r, g, b[, a])`` tuple of numbers (not a list of colours)."""
    if isinstance(c, str):
        return True
    return isinstance(c, tuple) and len(c) in (3, 4) and all(isinstance(v, (int, float, np.integer)) for v in c)


def _color(c: Color) -> Color:
    return _NAMED.get(c, c) if isinstance(c, str) else tuple(int(v) for v in c)


def _segments(cell: Cell, color: Color | Sequence[Color] | None) -> list[tuple[Ink, Color | Sequence[Color]]]:
    """Normalize a cell to a list of ``(ink, colour or per-stroke colours)``."""
    if isinstance(cell, Ink):
        return [(cell, "black" if color is None else color)]
    segs = list(cell)
    for seg in segs:
        if not (isinstance(seg, tuple) and len(seg) == 2 and isinstance(seg[0], Ink)):
            raise TypeError("a cell is an Ink or a list of (Ink, colour) tuples")
    return segs


def _bounds(segs: list[tuple[Ink, object]]) -> tuple[float, float, float, float] | None:
    pts = [ink.points for ink, _ in segs if ink.num_points]
    if not pts:
        return None
    p = np.concatenate(pts)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def _caption(cell: Cell) -> str:
    ink = cell if isinstance(cell, Ink) else (cell[0][0] if len(cell) else None)
    if ink is None:
        return ""
    parts = [p for p in (ink.label, f"[{ink.writer}]" if ink.writer else None) if p]
    return "  ".join(parts)


def _draw_cell(draw: ImageDraw.ImageDraw, segs, box: tuple[float, float, float, float], line_width: float) -> None:
    """Draw segments scaled (aspect kept) and centred into ``box = (x0, y0, x1, y1)`` pixels."""
    b = _bounds(segs)
    if b is None:
        return
    x0, y0, x1, y1 = box
    w, h = max(b[2] - b[0], 1e-9), max(b[3] - b[1], 1e-9)
    scale = min((x1 - x0) / w, (y1 - y0) / h)
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    ox = x0 + ((x1 - x0) - w * scale) / 2 - b[0] * scale
    oy = y0 + ((y1 - y0) - h * scale) / 2 - b[1] * scale
    lw = max(1, round(line_width))
    r = lw / 2
    for ink, color in segs:
        per_stroke = not _is_single_color(color)
        for i, stroke in enumerate(ink.strokes):
            c = _color(color[i % len(color)] if per_stroke else color)
            xy = np.column_stack([stroke[:, 0] * scale + ox, stroke[:, 1] * scale + oy])
            if len(xy) == 1 or np.ptp(xy, axis=0).max() < 1:
                cx, cy = xy.mean(axis=0)
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c)
            else:
                draw.line([tuple(p) for p in xy.tolist()], fill=c, width=lw, joint="curve")


def render_inks_png(
    inks: Sequence[Cell],
    path: str | Path | None = None,
    *,
    width: int = 1200,
    cols: int = 2,
    cell_height: int | None = None,
    colors: Sequence[Color | Sequence[Color] | None] | None = None,
    line_width: float = 2,
    labels: bool | Sequence[str] = True,
    background: Color = "white",
    padding: int = 12,
    supersample: int = 2,
) -> Image.Image:
    """Render a grid of inks; save it as PNG when ``path`` is given; return the image.

    inks:        one cell per entry: an ``Ink``, or a list of ``(Ink, colour)`` segments
                 sharing one scale (prefix + continuations).
    width:       image width in pixels; each of the ``cols`` columns is ``width // cols`` wide.
    cell_height: pixel height of a cell row (default: a quarter of the cell width, at least 80,
                 which suits lines of handwriting).
    colors:      for plain-``Ink`` cells, one entry per cell: a colour, or a list of colours
                 cycled over that ink's strokes; ``None`` means black.
    line_width:  stroke width in output pixels.
    labels:      ``True``: caption each cell with its label and writer; ``False``: none;
                 a list of strings: those captions.
    Each cell's content is scaled to fit its cell with the aspect ratio kept.
    """
    cells = list(inks)
    if cols < 1 or width < cols:
        raise ValueError(f"need cols >= 1 and width >= cols, got cols={cols}, width={width}")
    if colors is not None and len(colors) != len(cells):
        raise ValueError(f"{len(colors)} colour entries for {len(cells)} cells")
    if not isinstance(labels, bool) and len(labels) != len(cells):
        raise ValueError(f"{len(labels)} labels for {len(cells)} cells")
    cell_w = width // cols
    cell_h = cell_height if cell_height is not None else max(80, cell_w // 4)
    rows = max(1, -(-len(cells) // cols))
    s = max(1, int(supersample))
    font_px = 13
    caption_h = font_px + 6 if labels is not False else 0

    img = Image.new("RGB", (width * s, rows * cell_h * s), _color(background))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=font_px * s)
    for k, cell in enumerate(cells):
        r, c = divmod(k, cols)
        cx0, cy0 = c * cell_w * s, r * cell_h * s
        pad = padding * s
        box = (cx0 + pad, cy0 + pad + caption_h * s, cx0 + cell_w * s - pad, cy0 + cell_h * s - pad)
        segs = _segments(cell, None if colors is None else colors[k])
        _draw_cell(draw, segs, box, line_width * s)
        text = _caption(cell) if labels is True else ("" if labels is False else labels[k])
        if text:
            draw.text((cx0 + pad, cy0 + pad // 2), text, fill=(110, 110, 110), font=font)
        if c > 0:  # faint grid lines between cells
            draw.line([(cx0, cy0), (cx0, cy0 + cell_h * s)], fill=(225, 225, 225), width=s)
        if r > 0:
            draw.line([(cx0, cy0), (cx0 + cell_w * s, cy0)], fill=(225, 225, 225), width=s)
    if s > 1:
        img = img.resize((width, rows * cell_h), Image.Resampling.LANCZOS)
    if path is not None:
        img.save(path, format="PNG", optimize=True)
    return img


def render_ink_png(
    ink: Cell,
    path: str | Path | None = None,
    *,
    width: int = 800,
    height: int | None = None,
    color: Color | Sequence[Color] | None = None,
    line_width: float = 2,
    label: bool | str = True,
    **kwargs,
) -> Image.Image:
    """Render one ink (or one list of ``(Ink, colour)`` segments) as a single-cell image.

    ``color`` is a colour or per-stroke colours; ``label`` is ``True`` (label and writer),
    ``False`` or a caption string. Other keywords go to :func:`render_inks_png`.
    """
    labels = label if isinstance(label, bool) else [label]
    colors = None if color is None or not isinstance(ink, Ink) else [color]
    return render_inks_png(
        [ink], path, width=width, cols=1, cell_height=height, colors=colors,
        line_width=line_width, labels=labels, **kwargs,
    )
