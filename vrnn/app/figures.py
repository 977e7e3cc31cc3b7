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

import itertools
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
KL_HEATMAP_SCALE = [[0.0, "#f8fafc"], [0.25, "#fde68a"], [0.6, "#f97316"], [1.0, "#7f1d1d"]]
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
_AXIS = dict(gridcolor="#edf1f6", linecolor="#cbd5e1", zeroline=False, ticks="")
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


def _stacked_axes(rows: int, vspace: float, x_title: str | None = None) -> dict:
    """Rows sharing one time axis: y axes stacked top to bottom, x axes matched to the bottom one."""
    layout = {}
    for r, (_, yd) in enumerate(_grid(rows, 1, vspace=vspace)):
        last = r == rows - 1
        layout[_axis_name("x", r)] = dict(anchor=_axis_ref("y", r), domain=[0.0, 1.0], showticklabels=last,
                                          **({} if r == 0 else {"matches": "x"}),
                                          **({"title": dict(text=x_title)} if last and x_title else {}))
        layout[_axis_name("y", r)] = dict(anchor=_axis_ref("x", r), domain=list(yd))
    return layout


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
        spec["frames"] = frames
    return go.Figure(spec)


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


def continuations_figure(prefix, continuations: Sequence, layout: str = "overlay",
                         style: Style = DEFAULT_STYLE, title: str | None = None) -> go.Figure:
    """The prefix in ink colour and each continuation in its own colour.

    ``layout="overlay"`` draws them all on one canvas; ``"grid"`` gives each
    continuation its own panel (prefix repeated), side by side.
    """
    continuations = [c for c in continuations if c.num_points]
    if layout == "grid" and continuations:
        return _continuations_grid(prefix, continuations, style, title)
    names = ["prefix"] + [f"#{i + 1}" for i in range(len(continuations))]
    colors = [INK_COLOR] + [color_for(i) for i in range(len(continuations))]
    data, all_pts = _ink_traces([prefix, *continuations], colors, names, style)
    if not data:
        return _empty("No ink yet", style, title)
    if prefix.num_points:
        end = _round(prefix.end_point(), _extent(all_pts))
        data.append(dict(type="scatter", x=[end[0]], y=[end[1]], mode="markers", showlegend=False, hoverinfo="skip",
                         marker=dict(color="white", size=style.marker_size + 4, line=dict(color=INK_COLOR, width=2))))
    height = max(ink_height(all_pts, style, extra=40), style.scaled_height(0.85))  # the hero view: never squat
    return _figure(data, _ink_axes(), style, title, height, legend=True)


def _continuations_grid(prefix, continuations: Sequence, style: Style, title: str | None) -> go.Figure:
    n = len(continuations)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    all_pts = [prefix.points] + [c.points for c in continuations]
    extent = _extent(np.concatenate([p for p in all_pts if len(p)]))
    px, py = _polyline(prefix.strokes, extent) if prefix.num_points else ([], [])
    data, layout, notes = [], {}, []
    for i, (cont, (xd, yd)) in enumerate(zip(continuations, _grid(rows, cols, 0.02, 0.06))):
        cx, cy = _polyline(cont.strokes, extent)
        axes = dict(xaxis=_axis_ref("x", i), yaxis=_axis_ref("y", i))
        data.append(_lines(px, py, INK_COLOR, style.line_width * 0.8, **axes))
        data.append(_lines(cx, cy, color_for(i), style.line_width, **axes))
        layout.update(_ink_axes(i, xd, yd))
        notes.append(dict(text=f"#{i + 1}", x=(xd[0] + xd[1]) / 2, y=yd[1], xref="paper", yref="paper",
                          showarrow=False, yanchor="bottom", font=dict(size=style.font_size, color=color_for(i))))
    layout["annotations"] = notes
    per_row = style.height * (0.75 if cols > 2 else 1.0)
    return _figure(data, layout, style, title, height=int(per_row * rows + (40 if title else 0)))


# ---------------------------------------------------------------- pen replay
def _chunks(points_per_stroke: Sequence[np.ndarray], n_chunks: int) -> list[list[np.ndarray]]:
    """Split an ink's strokes into ``n_chunks`` consecutive pieces of similar point count.

    Each chunk is a list of stroke pieces; consecutive pieces of one stroke share their
    boundary point so the replayed line has no gaps.
    """
    flat = [(k, i) for k, s in enumerate(points_per_stroke) for i in range(len(s))]
    total = len(flat)
    if total == 0:
        return [[] for _ in range(n_chunks)]
    bounds = np.linspace(0, total, n_chunks + 1).round().astype(int)
    out = []
    for a, b in itertools.pairwise(bounds):
        pieces: dict[int, list[int]] = {}
        for k, i in flat[a:b]:
            pieces.setdefault(k, []).append(i)
        chunk = []
        for k, idx in pieces.items():
            lo, hi = idx[0], idx[-1]
            if lo > 0:
                lo -= 1  # join to the previous chunk's last point of this stroke
            chunk.append(points_per_stroke[k][lo:hi + 1])
        out.append(chunk)
    return out


def replay_figure(prefix, continuations: Sequence, prefix_frames: int = 12, continuation_frames: int = 18,
                  style: Style = DEFAULT_STYLE, title: str | None = None, frame_ms: int = 50) -> go.Figure:
    """Animated pen replay: the prefix is written, then all continuations grow at once.

    Each ink is cut into chunks that are separate traces; frame 0 hides all but the
    first, each later frame only reveals the chunks that appear then and moves the pen
    tips, so the payload grows with the number of points, not (frames x points).
    Replay / pause buttons come with the figure; it is drawn complete until played.
    Every frame redraws every chunk trace, so the frame counts stay modest (about
    50 ms per frame for 85 traces in headless Chromium on a loaded 2-core CPU).
    """
    continuations = [c for c in continuations if c.num_points]
    if not prefix.num_points and not continuations:
        return _empty("Nothing to replay", style, title)
    all_pts = np.concatenate([i.points for i in [prefix, *continuations] if i.num_points])
    extent = _extent(all_pts)
    prefix_chunks = _chunks(prefix.strokes, prefix_frames) if prefix.num_points else []
    cont_chunks = [_chunks(c.strokes, continuation_frames) for c in continuations]
    n_pf = len(prefix_chunks)
    n_frames = n_pf + (continuation_frames if continuations else 0)

    data: list[dict] = []
    appear: list[int] = []  # per chunk trace: the frame at which it appears
    for frame, chunk, color in ([(f, c, INK_COLOR) for f, c in enumerate(prefix_chunks)]
                                + [(n_pf + f, c, color_for(i)) for i, chunks in enumerate(cont_chunks)
                                   for f, c in enumerate(chunks)]):
        if chunk:
            x, y = _polyline(chunk, extent)
            data.append(_lines(x, y, color, style.line_width))  # visible: drawn complete until played
            appear.append(frame)

    def tip(frame: int) -> dict:
        """The pen tips at a frame: the prefix's, then one per continuation."""
        if frame < n_pf:
            groups = [(prefix_chunks[: frame + 1], INK_COLOR)]
        else:
            groups = [(chunks[: frame - n_pf + 1], color_for(i)) for i, chunks in enumerate(cont_chunks)]
        xs, ys, cs = [], [], []
        for chunks, color in groups:
            last = next((c[-1][-1] for c in reversed(chunks) if c), None)
            if last is not None:
                xs.append(last[0])
                ys.append(last[1])
                cs.append(color)
        return {"x": _round(np.asarray(xs), extent).tolist(), "y": _round(np.asarray(ys), extent).tolist(),
                "marker": {"color": cs}}

    n_chunk_traces = len(data)
    end = tip(n_frames - 1)
    data.append(dict(type="scatter", mode="markers", hoverinfo="skip", showlegend=False, x=end["x"], y=end["y"],
                     marker=dict(size=style.marker_size + 3, color=end["marker"]["color"],
                                 line=dict(color="white", width=1.5))))
    appear_arr = np.asarray(appear)
    frames = []
    for f in range(n_frames):
        # Frame 0 resets every chunk; later frames only reveal what appears then (the replay
        # always plays from frame 0), so frames cost O(chunks), not O(frames x chunks).
        shown = list(range(n_chunk_traces)) if f == 0 else np.flatnonzero(appear_arr == f).tolist()
        frame_data = [{"visible": bool(appear_arr[i] <= f)} for i in shown] + [tip(f)]
        frames.append(dict(data=frame_data, traces=shown + [n_chunk_traces], name=str(f)))

    play = dict(label="▶ Replay", method="animate",
                args=[None, {"frame": {"duration": frame_ms, "redraw": True}, "fromcurrent": False,
                             "transition": {"duration": 0}, "mode": "immediate"}])
    pause = dict(label="Pause", method="animate",
                 args=[[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}])
    layout = _ink_axes()
    # Fixed ranges: autorange would zoom onto the few chunks visible in early frames.
    lo, hi = all_pts.min(axis=0), all_pts.max(axis=0)
    pad = 0.05 * extent
    layout["xaxis"].update(range=[lo[0] - pad, hi[0] + pad], autorange=False)
    layout["yaxis"].update(range=[hi[1] + pad, lo[1] - pad], autorange=False)
    layout["updatemenus"] = [dict(type="buttons", direction="left", x=0.0, y=0.0, xanchor="left", yanchor="top",
                                  pad=dict(r=6, t=4), showactive=False, buttons=[play, pause],
                                  font=dict(size=style.font_size))]
    fig = _figure(data, layout, style, title, height=ink_height(all_pts, style, width_px=900), frames=frames)
    fig.update_layout(margin=dict(b=style.font_size * 3))
    return fig


# ---------------------------------------------------------------- surprise (KL / NLL)
def _robust_max(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1.0
    return float(max(np.percentile(v, 98), 1e-6))


def kl_ink_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE, title: str | None = None,
                  height: int | None = None) -> go.Figure:
    """The (preprocessed) ink with each step coloured by its KL: where the model is surprised."""
    pts = np.asarray(trace.points)
    T = len(pts)
    if T == 0:
        return _empty("No steps", style, title, height)
    extent = _extent(pts)
    x, y = _polyline(_split_by_pen(pts, trace.pen), extent)
    kl = np.round(np.asarray(trace.kl, dtype=np.float64), 3)
    rp = _round(pts, extent)
    data = [
        _lines(x, y, "#e2e8f0", style.line_width * 1.8),
        dict(type="scatter", x=rp[:, 0], y=rp[:, 1], mode="markers", showlegend=False,
             marker=dict(size=style.marker_size + 1, color=kl, colorscale=SURPRISE_SCALE, cmin=0,
                         cmax=_robust_max(kl), line=dict(width=0),
                         colorbar=dict(title=dict(text="KL<br>nats", side="top"), thickness=12, len=0.8)),
             customdata=np.arange(T), hovertemplate="step %{customdata}<br>KL %{marker.color:.2f} nats<extra></extra>"),
    ]
    s = _clip_step(step, T)
    if s is not None:
        data.append(dict(type="scatter", x=[rp[s, 0]], y=[rp[s, 1]], mode="markers", showlegend=False,
                         hoverinfo="skip", marker=dict(size=style.cursor_size, color="rgba(0,0,0,0)",
                                                       line=dict(color=CURSOR_COLOR, width=3))))
    return _figure(data, _ink_axes(), style, title, height or ink_height(pts, style, width_px=520, extra=40))


def _step_series(t: np.ndarray, y: np.ndarray, label: str, axis: int, color, bars: bool, **marker) -> dict:
    """Values per step as bars, or for long inks as a filled step outline (one SVG path instead
    of one rectangle per step: ~10x cheaper for the browser to redraw on every slider tick)."""
    refs = dict(xaxis=_axis_ref("x", axis), yaxis=_axis_ref("y", axis), showlegend=False,
                hovertemplate=f"step %{{x}}<br>{label} %{{y:.2f}} nats<extra></extra>")
    if bars:
        return dict(type="bar", x=t, y=y, marker=dict(color=color, line=dict(width=0), **marker), **refs)
    return dict(type="scatter", x=t, y=y, mode="lines", line=dict(shape="hvh", width=1, color=color),
                fill="tozeroy", fillcolor=_rgba(color, 0.55), **refs)


def step_bars_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE, title: str | None = None,
                     max_bars: int = 200) -> go.Figure:
    """KL per step (top) and NLL per step (bottom) along time, nats; pen lifts marked.

    Up to ``max_bars`` steps they are bars (KL bars in the surprise colours); longer inks
    get filled step outlines, which look alike and redraw far faster.
    """
    kl = np.round(np.asarray(trace.kl, dtype=np.float64), 3)
    nll = np.round(np.asarray(trace.nll, dtype=np.float64), 3)
    T = len(kl)
    if T == 0:
        return _empty("No steps", style, title)
    t = np.arange(T)
    bars = T <= max_bars
    if bars:  # each bar in its surprise colour
        kl_series = _step_series(t, kl, "KL", 0, kl, True, colorscale=SURPRISE_SCALE, cmin=0, cmax=_robust_max(kl))
    else:
        kl_series = _step_series(t, kl, "KL", 0, SURPRISE_SCALE[2][1], False)
    data = [kl_series, _step_series(t, nll, "NLL", 1, "#64748b", bars)]
    pen_steps = np.flatnonzero(np.asarray(trace.pen) > 0.5)
    if 0 < len(pen_steps) < 200:
        # pen lifts as faint ticks under the NLL axis: they explain the NLL spikes
        data.append(dict(type="scatter", x=pen_steps, y=np.zeros(len(pen_steps)), mode="markers", showlegend=False,
                         xaxis="x2", yaxis="y2", hovertemplate="pen up at step %{x}<extra></extra>",
                         marker=dict(symbol="triangle-up", size=style.marker_size, color=MUTED)))
    layout = _stacked_axes(2, vspace=0.12, x_title="step")
    layout["yaxis"]["title"] = dict(text="KL, nats")
    layout["yaxis2"]["title"] = dict(text="NLL, nats")
    layout.update(bargap=0.05, shapes=_time_cursor(_clip_step(step, T), 2))
    return _figure(data, layout, style, title, height=style.scaled_height(1.15))


# ---------------------------------------------------------------- latent dynamics
def pca_projection(post_mu: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of the posterior means: ``(mean (Z,), components (Z, k), explained variance ratio (k,))``.

    Components beyond the latent size (or the rank) are zero columns so callers can
    always project to ``k`` dimensions.
    """
    X = np.asarray(post_mu, dtype=np.float64)
    Z = X.shape[1] if X.ndim == 2 else 0
    mean = X.mean(axis=0) if len(X) else np.zeros(Z)
    W = np.zeros((Z, k))
    ratio = np.zeros(k)
    if len(X) >= 2 and Z > 0:
        _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
        m = min(k, vt.shape[0])
        # fix each component's sign (largest loading positive) so views are stable across reruns
        comps = vt[:m].T
        signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(m)])
        signs[signs == 0] = 1.0
        W[:, :m] = comps * signs
        var = s ** 2
        if var.sum() > 0:
            ratio[:m] = var[:m] / var.sum()
    elif Z > 0:
        W[: min(Z, k), : min(Z, k)] = np.eye(min(Z, k))
    return mean, W, ratio


def _ellipses(center: np.ndarray, sigma: np.ndarray, W: np.ndarray, every: int, n_pts: int = 20) -> tuple[list, list]:
    """1-sigma ellipses of diagonal Gaussians projected onto the PCA plane, ``None``-separated."""
    theta = np.linspace(0, 2 * np.pi, n_pts)
    circle = np.stack([np.cos(theta), np.sin(theta)])  # (2, n)
    xs: list = []
    ys: list = []
    for t in range(0, len(center), every):
        cov = W.T @ np.diag(np.asarray(sigma[t], dtype=np.float64) ** 2) @ W  # (2, 2)
        vals, vecs = np.linalg.eigh(cov)
        shape = vecs @ np.diag(np.sqrt(np.clip(vals, 0, None))) @ circle
        e = np.round(center[t][:, None] + shape, 4)
        xs.extend(e[0].tolist() + [None])
        ys.extend(e[1].tolist() + [None])
    return xs, ys


def _has_latents(trace) -> bool:
    mu = np.asarray(trace.post_mu)
    return mu.ndim == 2 and mu.shape[1] > 0 and len(mu) > 0


def latent_pca_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE, title: str | None = None,
                      max_ellipses: int = 30) -> go.Figure:
    """Prior and posterior paths of z in the plane of the posterior means' two principal components.

    Shaded ellipses are the projected 1-sigma regions (every few steps); the cursor
    marks the same step on both paths. The start step (the prior has seen no ink yet,
    and sits far from everything else) is left out of the projection and the paths.
    """
    if not _has_latents(trace):
        return _empty(NO_LATENTS, style, title)
    post_mu = np.asarray(trace.post_mu, dtype=np.float64)
    T = len(post_mu)
    first = 1 if T > 2 else 0
    steps = np.arange(first, T)
    mean, W, ratio = pca_projection(post_mu[first:])
    post = (post_mu[first:] - mean) @ W
    prior = (np.asarray(trace.prior_mu, dtype=np.float64)[first:] - mean) @ W
    every = max(1, int(np.ceil(len(steps) / max_ellipses)))
    data = []
    for name, center, sigma, color in (("prior", prior, trace.prior_sigma, PRIOR_COLOR),
                                       ("posterior", post, trace.post_sigma, POSTERIOR_COLOR)):
        ex, ey = _ellipses(center, np.asarray(sigma)[first:], W, every)
        data.append(_lines(ex, ey, _rgba(color, 0.18), 0.8, fill="toself", fillcolor=_rgba(color, 0.06)))
    for name, center, color, dash in (("prior p(z | h)", prior, PRIOR_COLOR, "dot"),
                                      ("posterior q(z | x, h)", post, POSTERIOR_COLOR, "solid")):
        c = np.round(center, 4)
        # lines without per-step markers: a marker is one SVG element each, slow to redraw on every tick
        data.append(dict(type="scatter", x=c[:, 0], y=c[:, 1], mode="lines", name=name,
                         line=dict(color=color, width=style.line_width * 0.7, dash=dash), customdata=steps,
                         hovertemplate="step %{customdata}<extra>" + name.split()[0] + "</extra>"))
    s = _clip_step(step, T)
    if s is not None:
        s = max(s, first) - first  # row of the cursor's step in the projected paths
        data.append(dict(type="scatter", x=[prior[s, 0], post[s, 0]], y=[prior[s, 1], post[s, 1]],
                         mode="lines+markers", showlegend=False, hoverinfo="skip",
                         line=dict(color=CURSOR_COLOR, width=1.5),
                         marker=dict(size=style.cursor_size * 0.8, color=[PRIOR_COLOR, POSTERIOR_COLOR],
                                     line=dict(color=CURSOR_COLOR, width=3))))
    layout = dict(xaxis=dict(title=dict(text=f"PC1 ({ratio[0]:.0%} of variance)")),
                  # free aspect: PC2 often holds a few % of the variance, and equal scales would flatten it
                  yaxis=dict(title=dict(text=f"PC2 ({ratio[1]:.0%})")))
    return _figure(data, layout, style, title, height=style.scaled_height(1.15), legend=True)


def active_dims(kl_dims: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` latent dimensions with the largest mean KL, in index order."""
    kl_dims = np.asarray(kl_dims, dtype=np.float64)
    if kl_dims.ndim != 2 or kl_dims.shape[1] == 0:
        return np.zeros(0, dtype=int)
    order = np.argsort(-kl_dims.mean(axis=0), kind="stable")[:k]
    return np.sort(order)


def latent_dims_figure(trace, step: int | None = None, max_dims: int = 6, style: Style = DEFAULT_STYLE,
                       title: str | None = None, max_points: int = 300) -> go.Figure:
    """Prior and posterior mean ± sigma over time, one panel per latent dimension.

    With more than ``max_dims`` dimensions the most active ones (largest mean KL) are
    shown; series longer than ``max_points`` steps are subsampled (the cursor is exact).
    """
    if not _has_latents(trace):
        return _empty(NO_LATENTS, style, title)
    T, Z = np.asarray(trace.post_mu).shape
    dims = active_dims(trace.kl_dims, max_dims) if Z > max_dims else np.arange(Z)
    t = np.arange(0, T, max(1, int(np.ceil(T / max_points))))  # long inks: every k-th step is plenty
    t_band = np.concatenate([t, t[::-1]])
    data = []
    layout = _stacked_axes(len(dims), vspace=0.025 if len(dims) > 3 else 0.05, x_title="step")
    for r, d in enumerate(dims):
        axes = dict(xaxis=_axis_ref("x", r), yaxis=_axis_ref("y", r))
        for name, mu, sigma, color, dash in (
                ("prior", trace.prior_mu, trace.prior_sigma, PRIOR_COLOR, "dot"),
                ("posterior", trace.post_mu, trace.post_sigma, POSTERIOR_COLOR, "solid")):
            m = np.asarray(mu, dtype=np.float64)[t, d]
            s = np.asarray(sigma, dtype=np.float64)[t, d]
            band = np.round(np.concatenate([m + s, (m - s)[::-1]]), 3)
            data.append(_lines(t_band, band, "rgba(0,0,0,0)", 0, fill="toself", fillcolor=_rgba(color, 0.15),
                               legendgroup=name, **axes))
            data.append(dict(type="scatter", x=t, y=np.round(m, 3), mode="lines", name=f"{name} mean ± σ",
                             line=dict(color=color, width=style.line_width * 0.6, dash=dash), legendgroup=name,
                             showlegend=r == 0, hovertemplate=f"z{d + 1} {name}<br>step %{{x}}: %{{y:.2f}}<extra></extra>",
                             **axes))
        layout[_axis_name("y", r)].update(title=dict(text=f"z{d + 1}", font=dict(size=style.font_size)), nticks=3)
    layout["shapes"] = _time_cursor(_clip_step(step, T), len(dims))
    height = max(style.height, int(style.height * 0.32 * len(dims)) + 60)
    return _figure(data, layout, style, title, height=height, legend=True)


def kl_heatmap_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE,
                      title: str | None = None) -> go.Figure:
    """Time x latent dimension heatmap of per-dimension KL: which units are active, and when."""
    if not _has_latents(trace):
        return _empty(NO_LATENTS, style, title)
    kl_dims = np.asarray(trace.kl_dims, dtype=np.float64)
    T, Z = kl_dims.shape
    data = [dict(type="heatmap", z=np.round(kl_dims.T, 3), x=np.arange(T), y=[f"z{d + 1}" for d in range(Z)],
                 colorscale=KL_HEATMAP_SCALE, zmin=0, zmax=_robust_max(kl_dims),
                 colorbar=dict(title=dict(text="nats", side="top"), thickness=12),
                 hovertemplate="step %{x}, %{y}<br>KL %{z:.3f} nats<extra></extra>")]
    layout = dict(xaxis=dict(title=dict(text="step")), yaxis=dict(autorange="reversed", title=dict(text="latent unit")),
                  shapes=_time_cursor(_clip_step(step, T)))
    height = int(min(max(style.height * 0.7, 26 * Z + 120), style.height * 1.6))
    return _figure(data, layout, style, title, height=height)


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


# (key in the progress reports, label, colour, panel, sign): panel 0 holds ELBOs (higher is
# better; the training loss is the negative ELBO, so it is flipped), panel 1 the two terms.
TRAINING_SERIES = (("loss", "training ELBO", INK_COLOR, 0, -1.0),
                   ("valid_elbo", "validation ELBO", POSTERIOR_COLOR, 0, 1.0),
                   ("nll", "reconstruction NLL", "#64748b", 1, 1.0),
                   ("kl", "KL", "#ea580c", 1, 1.0))


def training_curves_figure(history: Sequence[dict], style: Style = DEFAULT_STYLE,
                           title: str | None = None) -> go.Figure:
    """Live training curves from the progress reports of :func:`vrnn.train.fit`, nats per point:
    training and validation ELBO (left, higher is better), NLL and KL (right)."""
    data = []
    for key, label, color, panel, sign in TRAINING_SERIES:
        pts = [(h["step"], sign * h[key]) for h in history
               if h.get(key) is not None and "step" in h and np.isfinite(h[key])]
        if not pts:
            continue
        x, y = zip(*pts)
        data.append(dict(type="scatter", x=list(x), y=np.round(y, 4), name=label,
                         mode="lines+markers" if key == "valid_elbo" else "lines",
                         line=dict(color=color, width=style.line_width * 0.7),
                         xaxis=_axis_ref("x", panel), yaxis=_axis_ref("y", panel)))
    if not data:
        return _empty("Waiting for the first training steps…", style, title, height=style.scaled_height(0.8))
    layout = dict(
        xaxis=dict(domain=[0.0, 0.46], anchor="y", title=dict(text="step")),
        yaxis=dict(anchor="x", title=dict(text="ELBO, nats per point (higher is better)")),
        xaxis2=dict(domain=[0.56, 1.0], anchor="y2", title=dict(text="step")),
        yaxis2=dict(anchor="x2", title=dict(text="nats per point")),
    )
    return _figure(data, layout, style, title, height=style.scaled_height(0.9), legend=True)


def comparison_figure(rows: Sequence[dict], style: Style = DEFAULT_STYLE, title: str | None = None) -> go.Figure:
    """Per-point log-likelihood bounds of several models on the same ink (higher is better).

    ``rows``: dicts with ``model`` (name), ``measure`` (e.g. "ELBO", "IWAE (K=50)",
    "exact log-likelihood") and ``value`` (nats per point).
    """
    if not rows:
        return _empty("Nothing to compare", style, title)
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    colors = dict(zip(measures, (POSTERIOR_COLOR, PRIOR_COLOR, "#64748b", "#ea580c")))
    data = []
    for m in measures:
        sel = [r for r in rows if r["measure"] == m]
        data.append(dict(type="bar", x=[r["model"] for r in sel], y=[round(float(r["value"]), 4) for r in sel],
                         name=m, marker=dict(color=colors.get(m, MUTED)),
                         text=[f"{float(r['value']):.3f}" for r in sel], textposition="outside", cliponaxis=False,
                         hovertemplate="%{x}<br>" + m + ": %{y:.3f} nats/point<extra></extra>"))
    layout = dict(barmode="group", yaxis=dict(title=dict(text="nats per point")))
    return _figure(data, layout, style, title, height=style.scaled_height(1.0), legend=True)


def per_step_comparison_figure(curves: dict[str, np.ndarray], step: int | None = None, style: Style = DEFAULT_STYLE,
                               title: str | None = None) -> go.Figure:
    """Negative log-likelihood (bound) per step of several models along the same ink."""
    colors = (POSTERIOR_COLOR, "#64748b", PRIOR_COLOR, "#ea580c")
    data = []
    T = 0
    for i, (name, values) in enumerate(curves.items()):
        v = np.asarray(values, dtype=np.float64)
        T = max(T, len(v))
        data.append(dict(type="scatter", x=np.arange(len(v)), y=np.round(v, 3), mode="lines", name=name,
                         line=dict(color=colors[i % len(colors)], width=style.line_width * 0.6)))
    if not data:
        return _empty("Nothing to compare", style, title)
    layout = dict(xaxis=dict(title=dict(text="step")), yaxis=dict(title=dict(text="nats (lower is better)")),
                  shapes=_time_cursor(_clip_step(step, T)))
    return _figure(data, layout, style, title, height=style.scaled_height(0.9), legend=True)
