"""Pure plotly figure builders for the app: no Streamlit, no torch, numpy in, figures out.

Every builder takes plain data (:class:`~vrnn.Ink` objects, or a trace: any object
with the numpy fields of :class:`vrnn.Trace`: ``points (T, 2)``, ``pen (T,)``,
``kl (T,)``, ``nll (T,)``, ``kl_dims (T, Z)``, ``prior_mu``, ``prior_sigma``,
``post_mu``, ``post_sigma (T, Z)``), an optional highlighted ``step`` (the linked
time cursor shared by every view) and a :class:`Style` (normal or presentation).

Ink is drawn y-down (the ink convention) with equal axis scales. Coordinates sent to
the browser are rounded to 4 significant digits of the drawing's extent to keep
payloads small.

Speed: builders assemble plain ``data`` / ``layout`` dicts and make one
``go.Figure`` at the end. Plotly's incremental ``add_trace`` / ``update_*`` calls and
named templates validate and copy on every call (tens of ms per figure); the app
rebuilds every view on each tick of the time slider, so that matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

INK_COLOR = "#1f2937"
PRIOR_COLOR = "#7c3aed"
POSTERIOR_COLOR = "#0d9488"
CURSOR_COLOR = "#1d4ed8"  # deep blue: stands out on the yellow-to-red surprise colours
MUTED = "#94a3b8"
# Continuations: distinct, colour-blind-friendly hues that read on white and on a projector.
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#c026d3", "#0891b2", "#ca8a04", "#dc2626", "#4f46e5",
           "#65a30d", "#db2777", "#0d9488", "#9333ea")
# Surprise (KL): pale slate for "expected" to deep red for "surprised".
SURPRISE_SCALE = [[0.0, "#cbd5e1"], [0.35, "#fbbf24"], [0.7, "#f97316"], [1.0, "#b91c1c"]]
NO_LATENTS = "This model has no latent variables (RNN-GMM baseline)"


@dataclass(frozen=True)
class Style:
    """Sizes for one display mode; :meth:`presentation` is for talks (bigger everything)."""

    font_size: int = 13
    line_width: float = 2.4
    marker_size: float = 6.0
    cursor_size: float = 15.0
    height: int = 340

    @classmethod
    def presentation(cls) -> Style:
        return cls(font_size=20, line_width=4.5, marker_size=10.0, cursor_size=24.0, height=440)

    def scaled_height(self, factor: float) -> int:
        return round(self.height * factor)


DEFAULT_STYLE = Style()
_AXIS = dict(gridcolor="#edf1f6", linecolor="#cbd5e1", zeroline=False, ticks="", automargin=True)
#: A light template, kept tiny on purpose: plotly copies a named template (e.g.
#: "plotly_white") into every figure, which costs ~30 ms each.
TEMPLATE = dict(layout=dict(paper_bgcolor="white", plot_bgcolor="white", colorway=list(PALETTE),
                            xaxis=_AXIS, yaxis=_AXIS, font=dict(color=INK_COLOR)))


# ---------------------------------------------------------------- helpers
def _round(values: np.ndarray, extent: float) -> np.ndarray:
    """Round to ~4 significant digits of ``extent`` (smaller JSON, no visible change)."""
    extent = float(extent) if np.isfinite(extent) and extent > 0 else 1.0
    decimals = int(max(0, 3 - np.floor(np.log10(extent))))
    return np.round(np.asarray(values, dtype=np.float64), decimals)


def _extent(points: np.ndarray) -> float:
    if len(points) == 0:
        return 1.0
    return float(np.ptp(points, axis=0).max()) or 1.0


def _polyline(strokes: Sequence[np.ndarray], extent: float) -> tuple[list, list]:
    """One x / y list for many strokes, separated by ``None`` (one plotly trace, pen lifts as gaps)."""
    xs: list = []
    ys: list = []
    for s in strokes:
        s = _round(s, extent)
        xs.extend(s[:, 0].tolist() + [None])
        ys.extend(s[:, 1].tolist() + [None])
    return xs[:-1], ys[:-1]


def _split_by_pen(points: np.ndarray, pen: np.ndarray) -> list[np.ndarray]:
    """Strokes of a trace's points: a new stroke starts after each ``pen == 1`` step."""
    cuts = np.flatnonzero(np.asarray(pen) > 0.5) + 1
    return [p for p in np.split(np.asarray(points), cuts) if len(p)]


def _axis_name(kind: str, i: int) -> str:
    """Layout key of the ``i``-th (0-based) x or y axis: ``xaxis``, ``xaxis2``, ..."""
    return f"{kind}axis" if i == 0 else f"{kind}axis{i + 1}"


def _axis_ref(kind: str, i: int) -> str:
    """Trace reference of the ``i``-th axis: ``x``, ``x2``, ..."""
    return kind if i == 0 else f"{kind}{i + 1}"


def _ink_axes(i: int = 0, x_domain=None, y_domain=None) -> dict:
    """Equal scale, y down, no grid or ticks: ink is a drawing, not a chart."""
    x = dict(visible=False, constrain="domain", anchor=_axis_ref("y", i))
    y = dict(visible=False, autorange="reversed", scaleanchor=_axis_ref("x", i), scaleratio=1,
             anchor=_axis_ref("x", i))
    if x_domain is not None:
        x["domain"] = list(x_domain)
    if y_domain is not None:
        y["domain"] = list(y_domain)
    return {_axis_name("x", i): x, _axis_name("y", i): y}


def _grid(rows: int, cols: int, hspace: float = 0.03, vspace: float = 0.05):
    """Domains of a rows x cols grid, row-major from the top: list of (x_domain, y_domain)."""
    w = (1.0 - hspace * (cols - 1)) / cols
    h = (1.0 - vspace * (rows - 1)) / rows
    cells = []
    for r in range(rows):
        top = 1.0 - r * (h + vspace)
        for c in range(cols):
            left = c * (w + hspace)
            cells.append(((left, left + w), (max(0.0, top - h), top)))
    return cells


def _figure(data: list[dict], layout: dict, style: Style, title: str | None = None, height: int | None = None,
            legend: bool = False, frames: list[dict] | None = None) -> go.Figure:
    """One validated figure from plain dicts, with the shared look (title, legend band, fonts)."""
    # Title at the top left, legend in its own band under it: they never overlap.
    top = (style.font_size * 3 if title else 12) + (style.font_size * 2 if legend else 0)
    base = dict(
        template=TEMPLATE,
        height=height or style.height,
        font=dict(size=style.font_size, family="Inter, system-ui, sans-serif"),
        margin=dict(l=10, r=10, t=top, b=10),
        showlegend=legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0.0),
        hovermode="closest",
    )
    if title:
        base["title"] = dict(text=title, x=0.01, xanchor="left", y=1.0, yref="container", yanchor="top",
                             pad=dict(t=style.font_size // 2), font=dict(size=style.font_size + 3))
    base.update(layout)
    spec = {"data": data, "layout": base}
    if frames:
        return FramedFigure(spec, frames)
    return go.Figure(spec)


class FramedFigure(go.Figure):
    """A figure whose animation frames stay plain dicts: data and layout are validated as
    usual, the frames (hundreds of small cursor or pen updates, built by this module and
    validated by its tests with :meth:`validated`) are not. Validating them costs ~3 ms
    per frame, which is most of a pen-up's budget; :meth:`to_dict` (what Streamlit,
    ``to_json`` and ``to_html`` read) puts them back in.
    """

    def __init__(self, spec: dict, frames: list[dict]):
        super().__init__(spec)
        self._raw_frames = list(frames)

    @property
    def raw_frames(self) -> list[dict]:
        return self._raw_frames

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["frames"] = self._raw_frames
        return out

    def validated(self) -> go.Figure:
        """The same figure with its frames validated by plotly (for tests)."""
        return go.Figure(self.to_dict())


def ink_height(points: np.ndarray, style: Style, width_px: int = 620, extra: int = 0) -> int:
    """A figure height that fits an ink of this aspect ratio in a column about ``width_px`` wide."""
    if len(points) < 2:
        return style.height
    w, h = np.ptp(points, axis=0)
    aspect = h / w if w > 0 else 1.0
    return int(np.clip(width_px * aspect + 40 + extra, style.height * 0.6, style.height * 1.3))


def color_for(i: int) -> str:
    """The colour of continuation / sample ``i``."""
    return PALETTE[i % len(PALETTE)]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def scale_color(scale, v: float) -> str:
    """The colour at ``v`` (clipped to 0..1) of a plotly colour scale of hex stops, as ``#rrggbb``."""
    v = float(np.clip(v if np.isfinite(v) else 0.0, 0.0, 1.0))
    for (a, ca), (b, cb) in zip(scale, scale[1:]):
        if v <= b:
            w = 0.0 if b == a else (v - a) / (b - a)
            c0 = np.array([int(ca[i:i + 2], 16) for i in (1, 3, 5)])
            c1 = np.array([int(cb[i:i + 2], 16) for i in (1, 3, 5)])
            r, g, bl = np.round(c0 + w * (c1 - c0)).astype(int)
            return f"#{r:02x}{g:02x}{bl:02x}"
    return scale[-1][1]


def _empty(message: str, style: Style, title: str | None = None, height: int | None = None) -> go.Figure:
    layout = dict(xaxis=dict(visible=False), yaxis=dict(visible=False),
                  annotations=[dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                                    font=dict(size=style.font_size + 1, color=MUTED))])
    return _figure([], layout, style, title, height)


def placeholder_figure(message: str, style: Style = DEFAULT_STYLE, height: int | None = None) -> go.Figure:
    """An empty figure that only says ``message`` (keeps a view's place before there is data)."""
    return _empty(message, style, height=height)


def _clip_step(step: int | None, T: int) -> int | None:
    if step is None or T == 0:
        return None
    return int(np.clip(step, 0, T - 1))


def _time_cursor(step: int | None, n_axes: int = 1) -> list[dict]:
    """Vertical lines at ``step`` across ``n_axes`` time panels (layout shapes)."""
    if step is None:
        return []
    return [dict(type="line", x0=step, x1=step, y0=0, y1=1, xref=_axis_ref("x", i), yref=f"{_axis_ref('y', i)} domain",
                 line=dict(color=CURSOR_COLOR, width=2)) for i in range(n_axes)]


def _lines(x, y, color: str, width: float, name: str | None = None, **kw) -> dict:
    trace = dict(type="scatter", x=x, y=y, mode="lines", line=dict(color=color, width=width), hoverinfo="skip",
                 showlegend=name is not None)
    if name is not None:
        trace["name"] = name
    trace.update(kw)
    return trace


# ---------------------------------------------------------------- ink
def _ink_traces(inks: Sequence, colors: Sequence[str] | None, names: Sequence[str] | None,
                style: Style) -> tuple[list[dict], np.ndarray]:
    pts = [i.points for i in inks if i.num_points]
    if not pts:
        return [], np.zeros((0, 2))
    all_pts = np.concatenate(pts)
    extent = _extent(all_pts)
    data = []
    for k, ink in enumerate(inks):
        if not ink.num_points:
            continue
        x, y = _polyline(ink.strokes, extent)
        color = colors[k] if colors else (INK_COLOR if k == 0 else color_for(k - 1))
        data.append(_lines(x, y, color, style.line_width, names[k] if names else None))
    return data, all_pts


def ink_figure(inks: Sequence, colors: Sequence[str] | None = None, names: Sequence[str] | None = None,
               style: Style = DEFAULT_STYLE, title: str | None = None, height: int | None = None) -> go.Figure:
    """Several inks in one drawing, each in its colour (default: the first in ink colour)."""
    data, all_pts = _ink_traces(inks, colors, names, style)
    if not data:
        return _empty("No ink yet", style, title, height)
    height = height or ink_height(all_pts, style, extra=40 if title or names else 0)
    return _figure(data, _ink_axes(), style, title, height, legend=bool(names))


def ink_scale(points: np.ndarray) -> float:
    """The size of one line of writing: the 5-95 percentile range of y (as ``vrnn.preprocess``)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return 1.0
    lo, hi = np.percentile(pts, [5.0, 95.0], axis=0)
    ext = hi - lo
    if ext[1] > 1e-9:
        return float(ext[1])
    full = np.ptp(pts, axis=0)
    return float(full[1] or full[0] / 2 or 1.0)


def natural_end(cont, scale: float, gap: float = 0.6, far: float = 3.0, min_points: int = 4,
                after_x: float | None = None, drop: float = 0.5):
    """``cont`` up to where its writing naturally ends, in ``scale`` units (the prefix's height).

    Breaks are horizontal white space: the next stroke starting right of everything written
    so far (``reach``), not the length of the pen-up jump, which in print mostly goes up
    from one letter's foot to the next one's top. They count only after ``min_points``
    pen-down points (the space from the prefix to the first stroke never counts); with
    ``after_x`` (the prefix's right edge), only points right of it count, and ``reach``
    starts there: the strokes a writer adds to the word just written (a t-bar, an i-dot,
    a stroke back over it) finish the prefix. Once counting:

    - before the first *far* break: white space wider than ``far x scale`` (a stray stroke
      far away), or a new line: back to the left by more than ``gap x scale`` and down by
      more than ``drop x scale``. A jump back that does not go down is a delayed stroke
      (a dot, a bar) and ends nothing;
    - otherwise before the *last* word break (white space wider than ``gap x scale``): the
      step limit, not the writer, ended the word after it, so what is shown is whole words.

    A continuation with neither is returned whole."""
    from vrnn.ink import Ink

    strokes = [s for s in cont.strokes if len(s)]
    written, last_break = 0, None
    reach = -np.inf if after_x is None else float(after_x)
    for k in range(len(strokes) - 1):
        stroke, nxt = strokes[k], strokes[k + 1]
        written += len(stroke) if after_x is None else int(np.count_nonzero(stroke[:, 0] > after_x))
        reach = max(reach, float(stroke[:, 0].max()))
        if written < min_points:
            continue
        space = float(nxt[:, 0].min()) - reach
        step = nxt[0] - stroke[-1]
        if space > far * scale or (step[0] < -gap * scale and step[1] > drop * scale):
            last_break = k
            break
        if space > gap * scale:
            last_break = k
    if last_break is None:
        return cont
    times = cont.times[: last_break + 1] if cont.times is not None else None
    return Ink(strokes=[s.copy() for s in strokes[: last_break + 1]], times=times, label=cont.label,
               writer=cont.writer)


def _tail(prefix, width: float) -> list[np.ndarray]:
    """The end of the prefix that fits in ``width`` along x: a contiguous run of its last points,
    as strokes (long prefixes show only their last words next to the continuations)."""
    strokes = [s for s in prefix.strokes if len(s)]
    if not strokes:
        return []
    pts = np.concatenate(strokes)
    ids = np.concatenate([np.full(len(s), k) for k, s in enumerate(strokes)])
    lo = hi = pts[-1, 0]
    start = len(pts) - 1
    while start > 0:
        x = pts[start - 1, 0]
        if max(hi, x) - min(lo, x) > width:
            break
        lo, hi = min(lo, x), max(hi, x)
        start -= 1
    out = []
    for k in np.unique(ids[start:]):
        seg = pts[start:][ids[start:] == k]
        if len(seg):
            out.append(seg)
    return out


def continuation_view(prefix, continuations: Sequence, context: float = 7.0, reach: float = 14.0):
    """``(tail strokes, x range, y range)`` of the continuation views: the prefix's last
    ``context`` scales of width, and a box that holds the tail and most of every
    continuation (2-98 percentiles, at most ``reach`` scales past the tail) so one stray
    far stroke never stretches the axes. Ranges are in ink units, y down."""
    pts = np.asarray(prefix.points, dtype=np.float64)
    cont_pts = [np.asarray(c.points, dtype=np.float64) for c in continuations if c.num_points]
    scale = ink_scale(pts if len(pts) >= 2 else (np.concatenate(cont_pts) if cont_pts else np.zeros((0, 2))))
    tail = _tail(prefix, context * scale) if len(pts) else []
    tail_pts = np.concatenate(tail) if tail else (cont_pts[0][:1] if cont_pts else np.zeros((1, 2)))
    lo, hi = tail_pts.min(axis=0), tail_pts.max(axis=0)
    if cont_pts:
        allc = np.concatenate(cont_pts)
        clo, chi = np.percentile(allc, [2.0, 98.0], axis=0)
        lo = np.maximum(np.minimum(lo, clo), lo - [reach * scale * 0.3, 2.5 * scale])
        hi = np.minimum(np.maximum(hi, chi), hi + [reach * scale, 2.5 * scale])
    pad = 0.25 * scale
    lo, hi = lo - pad, hi + pad
    span = np.maximum(hi - lo, 1e-6)
    if span[1] < 1.6 * scale:  # a flat line still gets a line's height
        mid = (hi[1] + lo[1]) / 2
        lo[1], hi[1] = mid - 0.8 * scale, mid + 0.8 * scale
    return tail, [float(lo[0]), float(hi[0])], [float(lo[1]), float(hi[1])]


def continuations_figure(prefix, continuations: Sequence, layout: str = "rows", style: Style = DEFAULT_STYLE,
                         title: str | None = None, width_px: int = 640, context: float = 7.0) -> go.Figure:
    """The prefix's end in ink colour and each continuation in its own colour, at the
    prefix's own scale.

    ``layout="rows"`` (the default): one row per continuation, the prefix's last words
    repeated in each, same scale and same view in every row. ``"overlay"``: all in one
    view. Either way the view holds the prefix's end and most of every continuation
    (see :func:`continuation_view`); ink past it is clipped, not allowed to shrink the rest.
    """
    continuations = [c for c in continuations if c.num_points]
    if not prefix.num_points and not continuations:
        return _empty("No ink yet", style, title)
    tail, xr, yr = continuation_view(prefix, continuations, context=context)
    extent = max(xr[1] - xr[0], yr[1] - yr[0])
    tx, ty = _polyline(tail, extent) if tail else ([], [])
    end = _round(prefix.end_point(), extent) if prefix.num_points else None
    aspect = (yr[1] - yr[0]) / (xr[1] - xr[0])
    top = style.font_size * 3 if title else 8

    def end_marker(ax: int) -> dict:
        return dict(type="scatter", x=[end[0]], y=[end[1]], mode="markers", showlegend=False, hoverinfo="skip",
                    xaxis=_axis_ref("x", ax), yaxis=_axis_ref("y", ax),
                    marker=dict(color="white", size=style.marker_size + 3, line=dict(color=INK_COLOR, width=2)))

    def axes(ax: int, yd) -> dict:
        return {_axis_name("x", ax): dict(visible=False, range=xr, autorange=False, anchor=_axis_ref("y", ax),
                                          constrain="domain", domain=[0.05 if layout == "rows" else 0.0, 1.0]),
                _axis_name("y", ax): dict(visible=False, range=[yr[1], yr[0]], autorange=False, domain=list(yd),
                                          anchor=_axis_ref("x", ax), scaleanchor=_axis_ref("x", ax), scaleratio=1,
                                          constrain="domain")}

    if layout != "rows" or not continuations:
        data = [_lines(tx, ty, INK_COLOR, style.line_width, "your ink")] if tail else []
        for i, c in enumerate(continuations):
            x, y = _polyline(c.strokes, extent)
            data.append(_lines(x, y, color_for(i), style.line_width, f"#{i + 1}"))
        if end is not None:
            data.append(end_marker(0))
        height = int(np.clip(width_px * aspect, style.height * 0.6, style.height * 1.4)) + top + style.font_size * 2
        return _figure(data, axes(0, (0, 1)), style, title, height=height, legend=True)

    n = len(continuations)
    row_px = int(np.clip(width_px * 0.95 * aspect, 70 if n > 3 else 100, 210))
    gap_px = 10
    height = n * row_px + (n - 1) * gap_px + top + 10
    plot_h = height - top - 10
    data, lay, notes = [], {}, []
    for i, c in enumerate(continuations):
        y1 = 1.0 - i * (row_px + gap_px) / plot_h
        yd = (max(0.0, y1 - row_px / plot_h), y1)
        refs = dict(xaxis=_axis_ref("x", i), yaxis=_axis_ref("y", i))
        if tail:
            data.append(_lines(tx, ty, INK_COLOR, style.line_width, **refs))
        x, y = _polyline(c.strokes, extent)
        data.append(_lines(x, y, color_for(i), style.line_width, **refs))
        if end is not None:
            data.append(end_marker(i))
        lay.update(axes(i, yd))
        notes.append(dict(text=f"<b>#{i + 1}</b>", x=0.0, y=(yd[0] + yd[1]) / 2, xref="paper", yref="paper",
                          xanchor="left", showarrow=False, font=dict(size=style.font_size + 1, color=color_for(i))))
    lay["annotations"] = notes
    lay["shapes"] = [dict(type="line", x0=0.05, x1=1.0, xref="paper", yref="paper",
                          y0=1.0 - (i * (row_px + gap_px) - gap_px / 2) / plot_h,
                          y1=1.0 - (i * (row_px + gap_px) - gap_px / 2) / plot_h,
                          line=dict(color="#e2e8f0", width=1)) for i in range(1, n)]
    return _figure(data, lay, style, title, height=height)


# ---------------------------------------------------------------- pen replay
#: Pen speed (in scales per second) and time per pen lift for ink without timestamps.
DEFAULT_PEN_SPEED = 5.0
PEN_LIFT_S = 0.2


def pen_speed(ink, scale: float) -> float:
    """The pen's median speed while writing, in ink units per second (a default without times)."""
    if ink.times is None:
        return DEFAULT_PEN_SPEED * scale
    speeds = []
    for s, t in zip(ink.strokes, ink.times):
        if len(s) < 2:
            continue
        d = np.linalg.norm(np.diff(s, axis=0), axis=1)
        dt = np.diff(np.asarray(t, dtype=np.float64))
        ok = dt > 1e-4
        speeds.extend((d[ok] / dt[ok]).tolist())
    v = float(np.median(speeds)) if speeds else 0.0
    return v if np.isfinite(v) and v > 0 else DEFAULT_PEN_SPEED * scale


def _timeline(ink, speed: float, t0: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(points (N, 2), times (N,), stroke id (N,))``: the ink's own clock when it has one,
    else one at ``speed`` units/s with :data:`PEN_LIFT_S` per lift; starting at ``t0``."""
    strokes = [np.asarray(s, dtype=np.float64) for s in ink.strokes if len(s)]
    if not strokes:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=int)
    pts = np.concatenate(strokes)
    ids = np.concatenate([np.full(len(s), k) for k, s in enumerate(strokes)])
    if ink.times is not None and len(ink.times) == len(ink.strokes):
        t = np.concatenate([np.asarray(x, dtype=np.float64) for x, s in zip(ink.times, ink.strokes) if len(s)])
        if len(t) == len(pts) and np.all(np.isfinite(t)):
            t = np.maximum.accumulate(t - t[0])
            return pts, t0 + t, ids
    step = np.linalg.norm(np.diff(pts, axis=0), axis=1) / max(speed, 1e-9)
    lift = np.diff(ids) > 0
    step = np.where(lift, PEN_LIFT_S + step / 3.0, step)  # in the air: a pause, then a quick move
    return pts, t0 + np.concatenate([[0.0], np.cumsum(step)]), ids


def replay_figure(prefix, continuations: Sequence, speed: float = 1.0, style: Style = DEFAULT_STYLE,
                  title: str | None = None, fps: int = 20, max_frames: int = 400) -> go.Figure:
    """Animated pen replay at the pen's real speed (times ``x speed``): the prefix is written
    as it was drawn (its own timestamps; a steady pen where it has none), then every
    continuation grows at once at the prefix's pen speed.

    Each ink is split into blocks of frames, one trace per block: a frame updates only the
    block being written (``redraw: false``), so the payload grows with points, not frames x
    points. Frame 0 empties every block; the figure is drawn complete until played.
    """
    continuations = [c for c in continuations if c.num_points]
    if not prefix.num_points and not continuations:
        return _empty("Nothing to replay", style, title)
    scale = ink_scale(prefix.points if prefix.num_points >= 2 else np.concatenate([c.points for c in continuations]))
    v = pen_speed(prefix, scale) if prefix.num_points else DEFAULT_PEN_SPEED * scale
    lines = []
    t_end = 0.0
    if prefix.num_points:
        p, t, ids = _timeline(prefix, v)
        lines.append((p, t, ids, INK_COLOR))
        t_end = float(t[-1]) + PEN_LIFT_S
    for i, c in enumerate(continuations):
        lines.append((*_timeline(c, v, t_end), color_for(i)))
    total = max(float(max(t[-1] for _, t, _, _ in lines)), 1e-3)
    speed = float(speed) if speed and speed > 0 else 1.0
    n_frames = int(min(max_frames, max(2, np.ceil(total / speed * fps) + 1)))
    frame_ms = max(1, int(round(total / speed * 1000 / (n_frames - 1))))
    t_frames = np.linspace(0.0, total, n_frames)
    block = max(10, int(np.ceil(n_frames / 20)))
    n_blocks = int(np.ceil(n_frames / block))
    tail, xr, yr = continuation_view(prefix, continuations, context=1e9)  # every bit of the prefix
    extent = max(xr[1] - xr[0], yr[1] - yr[0])
    counts = [np.searchsorted(t, t_frames, side="right") for _, t, _, _ in lines]  # points shown per frame

    def segment(k: int, a: int, b: int) -> dict:
        p, _, ids, _ = lines[k]
        if b - a < 2:  # nothing to draw yet: one point (an empty update does not clear a line without a redraw)
            q = _round(p[min(a, len(p) - 1)], extent)
            return {"x": [float(q[0])], "y": [float(q[1])]}
        seg, sid = _round(p[a:b], extent), ids[a:b]
        xs, ys = [], []
        for j in range(len(seg)):
            if j and sid[j] != sid[j - 1]:
                xs.append(None)
                ys.append(None)
            xs.append(float(seg[j, 0]))
            ys.append(float(seg[j, 1]))
        return {"x": xs, "y": ys}

    def block_start(k: int, b: int) -> int:
        return 0 if b == 0 else max(int(counts[k][b * block - 1]) - 1, 0)  # joins the previous block

    data, index = [], {}
    for k, (_, _, _, color) in enumerate(lines):
        for b in range(n_blocks):
            last = min((b + 1) * block, n_frames) - 1
            index[k, b] = len(data)
            data.append(_lines(**segment(k, block_start(k, b), int(counts[k][last])), color=color,
                               width=style.line_width))

    def tips(f: int) -> dict:
        xs, ys, cs = [], [], []
        for k, (p, _, _, color) in enumerate(lines):
            n = int(counts[k][f])
            if n:
                q = _round(p[n - 1], extent)
                xs.append(float(q[0]))
                ys.append(float(q[1]))
                cs.append(color)
        return {"x": xs, "y": ys, "marker": {"color": cs}}

    tip_index = len(data)
    end = tips(n_frames - 1)
    data.append(dict(type="scatter", mode="markers", hoverinfo="skip", showlegend=False, x=end["x"], y=end["y"],
                     marker=dict(size=style.marker_size + 3, color=end["marker"]["color"],
                                 line=dict(color="white", width=1.5))))
    frames = []
    for f in range(n_frames):
        b = f // block
        traces, fd = [], []
        for k in range(len(lines)):
            if f == 0:  # the replay always starts at frame 0: empty every later block
                for bb in range(1, n_blocks):
                    traces.append(index[k, bb])
                    fd.append(segment(k, block_start(k, bb), block_start(k, bb)))
            traces.append(index[k, b])
            fd.append(segment(k, block_start(k, b), int(counts[k][f])))
        frames.append(dict(name=str(f), data=fd + [tips(f)], traces=traces + [tip_index]))
    anim = {"frame": {"duration": frame_ms, "redraw": False}, "transition": {"duration": 0}, "mode": "immediate"}
    play = dict(label="▶ Replay", method="animate", args=[None, dict(anim, fromcurrent=False)])
    pause = dict(label="❚❚ Pause", method="animate",
                 args=[[None], {"frame": {"duration": 0, "redraw": False}, "transition": {"duration": 0},
                                "mode": "immediate"}])
    layout = _ink_axes()
    layout["xaxis"].update(range=xr, autorange=False)
    layout["yaxis"].update(range=[yr[1], yr[0]], autorange=False)
    layout["updatemenus"] = [dict(type="buttons", direction="left", x=0.0, y=0.0, xanchor="left", yanchor="top",
                                  pad=dict(r=6, t=4), showactive=False, buttons=[play, pause],
                                  font=dict(size=style.font_size))]
    aspect = (yr[1] - yr[0]) / max(xr[1] - xr[0], 1e-9)
    height = int(np.clip(900 * aspect + 40, style.height * 0.6, style.height * 1.3))
    fig = _figure(data, layout, style, title, height=height, frames=frames)
    fig.update_layout(margin=dict(b=style.font_size * 3), meta={"replay_seconds": round(total / speed, 2)})
    return fig

# ---------------------------------------------------------------- samples, training, comparison
def samples_figure(inks: Sequence, style: Style = DEFAULT_STYLE, title: str | None = None,
                   cols: int = 2) -> go.Figure:
    """Unconditional samples, one panel each, in their own colours."""
    inks = [i for i in inks if i.num_points]
    if not inks:
        return _empty("No samples", style, title)
    cols = max(1, min(cols, len(inks)))
    rows = int(np.ceil(len(inks) / cols))
    data, layout = [], {}
    for i, (ink, (xd, yd)) in enumerate(zip(inks, _grid(rows, cols, 0.03, 0.05))):
        x, y = _polyline(ink.strokes, _extent(ink.points))
        data.append(_lines(x, y, color_for(i), style.line_width, xaxis=_axis_ref("x", i), yaxis=_axis_ref("y", i)))
        layout.update(_ink_axes(i, xd, yd))
    return _figure(data, layout, style, title, height=int(style.height * 0.6 * rows) + (40 if title else 10))


# (key in the progress reports, phase of the reports it is read from, label, colour, panel, dash).
# Panel 0: ELBOs (nats per point, higher is better); panel 1: the two terms (lower is better).
# Training values come from "train" reports only, validation values from their own keys, so
# a validation report never lands in a training series (older reports reused the keys).
TRAINING_SERIES = (("elbo", "train", "training ELBO", INK_COLOR, 0, "solid"),
                   ("valid_elbo", "valid", "validation ELBO", POSTERIOR_COLOR, 0, "solid"),
                   ("nll", "train", "training NLL", "#64748b", 1, "solid"),
                   ("kl", "train", "training KL", "#ea580c", 1, "solid"),
                   ("valid_nll", "valid", "validation NLL", "#334155", 1, "dash"),
                   ("valid_kl", "valid", "validation KL", "#9a3412", 1, "dash"))
LOSS_SERIES = ("loss", "train", "training loss (with KL warm-up: not the ELBO)", "#94a3b8", 1, "dot")


def _series(history: Sequence[dict], key: str, phase: str) -> list[tuple[float, float]]:
    out = []
    for h in history:
        p = h.get("phase") or "train"
        if (phase == "train" and p not in ("train", "done")) or "step" not in h:
            continue
        v = h.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v):
            out.append((h["step"], float(v)))
    return out


def training_curves_figure(history: Sequence[dict], style: Style = DEFAULT_STYLE,
                           title: str | None = None) -> go.Figure:
    """Live training curves from the progress reports of :func:`vrnn.train.fit`, nats per point:
    training and validation ELBO (left, higher is better), NLL and KL of each (right).

    The training ELBO is the reports' ``elbo`` (the true bound, without KL warm-up or free
    bits); reports without it get the training loss on the right, labelled as such.
    """
    specs = list(TRAINING_SERIES)
    if not _series(history, "elbo", "train"):
        specs.append(LOSS_SERIES)
    data = []
    for key, phase, label, color, panel, dash in specs:
        pts = _series(history, key, phase)
        if not pts:
            continue
        x, y = zip(*pts)
        data.append(dict(type="scatter", x=list(x), y=np.round(y, 4), name=label,
                         mode="lines+markers" if phase == "valid" else "lines",
                         line=dict(color=color, width=style.line_width * 0.7, dash=dash),
                         marker=dict(size=style.marker_size),
                         xaxis=_axis_ref("x", panel), yaxis=_axis_ref("y", panel)))
    if not data:
        return _empty("Waiting for the first training steps…", style, title, height=style.scaled_height(0.8))
    layout = dict(
        xaxis=dict(domain=[0.0, 0.44], anchor="y", title=dict(text="step")),
        yaxis=dict(anchor="x", title=dict(text="ELBO, nats/point (higher is better)")),
        xaxis2=dict(domain=[0.56, 1.0], anchor="y2", title=dict(text="step")),
        yaxis2=dict(anchor="x2", title=dict(text="nats/point (lower is better)")),
    )
    return _figure(data, layout, style, title, height=style.scaled_height(1.0), legend=True)


#: One colour per kind of measure, whatever else is on the chart.
MEASURE_COLORS = {"ELBO": POSTERIOR_COLOR, "IWAE": PRIOR_COLOR, "exact": "#64748b"}


def measure_color(measure: str) -> str:
    for prefix, color in MEASURE_COLORS.items():
        if measure.startswith(prefix):
            return color
    return MUTED


def comparison_figure(rows: Sequence[dict], style: Style = DEFAULT_STYLE, title: str | None = None) -> go.Figure:
    """Per-point log-likelihood bounds of several models on the same ink (higher is better).

    ``rows``: dicts with ``model`` (name), ``measure`` (e.g. "ELBO", "IWAE (K=50)",
    "exact log-likelihood"), ``value`` (nats per point) and optionally ``se`` (Monte
    Carlo standard error, drawn as an error bar).
    """
    if not rows:
        return _empty("Nothing to compare", style, title)
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    data = []
    for m in measures:
        sel = [r for r in rows if r["measure"] == m]
        se = [float(r.get("se") or 0.0) for r in sel]
        text = [f"{float(r['value']):.3f}" + (f" ± {s:.3f}" if s else "") for r, s in zip(sel, se)]
        bar = dict(type="bar", x=[r["model"] for r in sel], y=[round(float(r["value"]), 4) for r in sel],
                   name=m, marker=dict(color=measure_color(m)), text=text, textposition="outside", cliponaxis=False,
                   hovertemplate="%{x}<br>" + m + ": %{text} nats/point<extra></extra>")
        if any(se):
            bar["error_y"] = dict(type="data", array=[round(s, 4) for s in se], visible=True, color=INK_COLOR,
                                  thickness=1.5, width=6)
        data.append(bar)
    layout = dict(barmode="group", yaxis=dict(title=dict(text="nats/point (higher is better)")))
    return _figure(data, layout, style, title, height=style.scaled_height(1.0), legend=True)


def per_step_comparison_figure(curves: dict[str, np.ndarray], step: int | None = None, style: Style = DEFAULT_STYLE,
                               title: str | None = None) -> go.Figure:
    """Log-likelihood (bound) per step of several models along the same ink, nats (higher is better)."""
    colors = (POSTERIOR_COLOR, "#64748b", PRIOR_COLOR, "#ea580c")
    data = []
    T = 0
    for i, (name, values) in enumerate(curves.items()):
        v = np.asarray(values, dtype=np.float64)
        T = max(T, len(v))
        y = [round(float(a), 3) if np.isfinite(a) else None for a in v]  # NaN (e.g. step 0, not scored): a gap
        data.append(dict(type="scatter", x=np.arange(len(v)), y=y, mode="lines", name=name,
                         line=dict(color=colors[i % len(colors)], width=style.line_width * 0.6)))
    if not data:
        return _empty("Nothing to compare", style, title)
    layout = dict(xaxis=dict(title=dict(text="step")), yaxis=dict(title=dict(text="nats per step (higher is better)")),
                  shapes=_time_cursor(_clip_step(step, T)))
    return _figure(data, layout, style, title, height=style.scaled_height(0.9), legend=True)
