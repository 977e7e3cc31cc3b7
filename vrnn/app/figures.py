"""Pure plotly figure builders for the app: no Streamlit, no torch, numpy in, figures out.

Every builder takes plain data (:class:`~vrnn.Ink` objects, or a trace: any object
with the numpy fields of :class:`vrnn.Trace`: ``points (T, 2)``, ``pen (T,)``,
``kl (T,)``, ``nll (T,)``, ``kl_dims (T, Z)``, ``prior_mu``, ``prior_sigma``,
``post_mu``, ``post_sigma (T, Z)``), an optional highlighted ``step`` (the linked
time cursor shared by every view) and a :class:`Style` (normal or presentation).

Ink is drawn y-down (the ink convention) with equal axis scales. Coordinates sent to
the browser are rounded to 4 significant digits of the drawing's extent to keep
payloads small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

INK_COLOR = "#1f2937"
PRIOR_COLOR = "#7c3aed"
POSTERIOR_COLOR = "#0d9488"
CURSOR_COLOR = "#e11d48"
MUTED = "#94a3b8"
# Continuations: distinct, colour-blind-friendly hues that read on white and on a projector.
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#c026d3", "#0891b2", "#ca8a04", "#dc2626", "#4f46e5",
           "#65a30d", "#db2777", "#0d9488", "#9333ea")
# Surprise (KL): pale slate for "expected" to deep red for "surprised".
SURPRISE_SCALE = [[0.0, "#cbd5e1"], [0.35, "#fbbf24"], [0.7, "#f97316"], [1.0, "#b91c1c"]]
KL_HEATMAP_SCALE = [[0.0, "#f8fafc"], [0.25, "#fde68a"], [0.6, "#f97316"], [1.0, "#7f1d1d"]]


@dataclass(frozen=True)
class Style:
    """Sizes for one display mode; :meth:`presentation` is for talks (bigger everything)."""

    font_size: int = 13
    line_width: float = 2.4
    marker_size: float = 6.0
    cursor_size: float = 15.0
    height: int = 340
    template: str = "plotly_white"

    @classmethod
    def presentation(cls) -> "Style":
        return cls(font_size=20, line_width=4.5, marker_size=10.0, cursor_size=24.0, height=440)

    def scaled_height(self, factor: float) -> int:
        return int(round(self.height * factor))


DEFAULT_STYLE = Style()


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


def _ink_axes(fig: go.Figure, row: int | None = None, col: int | None = None, anchor: str = "x") -> None:
    """Equal scale, y down, no grid or ticks: ink is a drawing, not a chart."""
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(visible=False, constrain="domain", **kw)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=anchor, scaleratio=1, **kw)


def _base_layout(fig: go.Figure, style: Style, title: str | None = None, height: int | None = None,
                 legend: bool = False) -> go.Figure:
    # Title at the top left, legend in its own band under it: they never overlap.
    top = (style.font_size * 3 if title else 12) + (style.font_size * 2 if legend else 0)
    fig.update_layout(
        template=style.template,
        height=height or style.height,
        font=dict(size=style.font_size, family="Inter, system-ui, sans-serif"),
        margin=dict(l=10, r=10, t=top, b=10),
        title=dict(text=title, x=0.01, xanchor="left", y=1.0, yref="container", yanchor="top",
                   pad=dict(t=style.font_size // 2), font=dict(size=style.font_size + 3)) if title else None,
        showlegend=legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0.0),
        hovermode="closest",
        plot_bgcolor="white",
        paper_bgcolor="white",
    )
    return fig


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


def _empty(message: str, style: Style, title: str | None = None, height: int | None = None) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=style.font_size + 1, color=MUTED))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base_layout(fig, style, title, height)


def _clip_step(step: int | None, T: int) -> int | None:
    if step is None or T == 0:
        return None
    return int(np.clip(step, 0, T - 1))


# ---------------------------------------------------------------- ink
def ink_figure(inks: Sequence, colors: Sequence[str] | None = None, names: Sequence[str] | None = None,
               style: Style = DEFAULT_STYLE, title: str | None = None, height: int | None = None) -> go.Figure:
    """Several inks in one drawing, each in its colour (default: the first in ink colour)."""
    fig = go.Figure()
    pts = [i.points for i in inks if i.num_points]
    if not pts:
        return _empty("No ink yet", style, title, height)
    extent = _extent(np.concatenate(pts))
    for k, ink in enumerate(inks):
        if not ink.num_points:
            continue
        x, y = _polyline(ink.strokes, extent)
        color = colors[k] if colors else (INK_COLOR if k == 0 else color_for(k - 1))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=color, width=style.line_width),
                                 name=names[k] if names else f"ink {k}", hoverinfo="skip"))
    _ink_axes(fig)
    height = height or ink_height(np.concatenate(pts), style, extra=40 if title or names else 0)
    return _base_layout(fig, style, title, height, legend=bool(names))


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
    fig = ink_figure([prefix, *continuations], colors=colors, names=names, style=style, title=title)
    if prefix.num_points:
        end = prefix.end_point()
        fig.add_trace(go.Scatter(x=[end[0]], y=[end[1]], mode="markers", name="prefix end", showlegend=False,
                                 marker=dict(color="white", size=style.marker_size + 4,
                                             line=dict(color=INK_COLOR, width=2)), hoverinfo="skip"))
    return fig


def _continuations_grid(prefix, continuations: Sequence, style: Style, title: str | None) -> go.Figure:
    n = len(continuations)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.02, vertical_spacing=0.04,
                        subplot_titles=[f"#{i + 1}" for i in range(n)])
    all_pts = [prefix.points] + [c.points for c in continuations]
    extent = _extent(np.concatenate([p for p in all_pts if len(p)]))
    px, py = _polyline(prefix.strokes, extent) if prefix.num_points else ([], [])
    for i, cont in enumerate(continuations):
        r, c = divmod(i, cols)
        cx, cy = _polyline(cont.strokes, extent)
        fig.add_trace(go.Scatter(x=px, y=py, mode="lines", hoverinfo="skip", showlegend=False,
                                 line=dict(color=INK_COLOR, width=style.line_width * 0.8)), row=r + 1, col=c + 1)
        fig.add_trace(go.Scatter(x=cx, y=cy, mode="lines", hoverinfo="skip", showlegend=False,
                                 line=dict(color=color_for(i), width=style.line_width)), row=r + 1, col=c + 1)
        axis = "x" if i == 0 else f"x{i + 1}"
        _ink_axes(fig, row=r + 1, col=c + 1, anchor=axis)
    fig.update_annotations(font=dict(size=style.font_size))
    per_row = style.height * (0.75 if cols > 2 else 1.0)
    return _base_layout(fig, style, title, height=int(per_row * rows + (40 if title else 0)))


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
    for a, b in zip(bounds[:-1], bounds[1:]):
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


def replay_figure(prefix, continuations: Sequence, prefix_frames: int = 20, continuation_frames: int = 30,
                  style: Style = DEFAULT_STYLE, title: str | None = None, frame_ms: int = 60) -> go.Figure:
    """Animated pen replay: the prefix is written, then all continuations grow at once.

    Each ink is cut into chunks that are separate traces; frame 0 hides all but the
    first, each later frame only reveals the chunks that appear then and moves the pen
    tips, so the payload grows with the number of points, not (frames x points).
    Replay / pause buttons come with the figure; it is drawn complete until played.
    """
    continuations = [c for c in continuations if c.num_points]
    if not prefix.num_points and not continuations:
        return _empty("Nothing to replay", style, title)
    all_pts = np.concatenate([i.points for i in [prefix, *continuations] if i.num_points])
    extent = _extent(all_pts)
    fig = go.Figure()
    appear: list[int] = []  # per chunk trace: the frame at which it appears

    prefix_chunks = _chunks(prefix.strokes, prefix_frames) if prefix.num_points else []
    cont_chunks = [_chunks(c.strokes, continuation_frames) for c in continuations]
    n_pf = len(prefix_chunks)
    n_frames = n_pf + (continuation_frames if continuations else 0)

    def add_chunk(chunk: list[np.ndarray], color: str, width: float, frame: int) -> None:
        if not chunk:
            return
        x, y = _polyline(chunk, extent)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", visible=False, hoverinfo="skip", showlegend=False,
                                 line=dict(color=color, width=width)))
        appear.append(frame)

    for f, chunk in enumerate(prefix_chunks):
        add_chunk(chunk, INK_COLOR, style.line_width, f)
    for i, chunks in enumerate(cont_chunks):
        for f, chunk in enumerate(chunks):
            add_chunk(chunk, color_for(i), style.line_width, n_pf + f)

    def tip_positions(frame: int) -> tuple[list, list, list]:
        xs, ys, cs = [], [], []
        if frame < n_pf:
            last = next((c[-1][-1] for c in reversed(prefix_chunks[:frame + 1]) if c), None)
            if last is not None:
                xs.append(last[0]); ys.append(last[1]); cs.append(INK_COLOR)
        else:
            f = frame - n_pf
            for i, chunks in enumerate(cont_chunks):
                last = next((c[-1][-1] for c in reversed(chunks[:f + 1]) if c), None)
                if last is not None:
                    xs.append(last[0]); ys.append(last[1]); cs.append(color_for(i))
        return _round(np.asarray(xs), extent).tolist(), _round(np.asarray(ys), extent).tolist(), cs

    n_chunk_traces = len(appear)
    x0, y0, c0 = tip_positions(n_frames - 1)
    fig.add_trace(go.Scatter(x=x0, y=y0, mode="markers", hoverinfo="skip", showlegend=False,
                             marker=dict(size=style.marker_size + 3, color=c0, line=dict(color="white", width=1.5))))
    tip_index = n_chunk_traces
    appear_arr = np.asarray(appear)
    frames = []
    for f in range(n_frames):
        tx, ty, tc = tip_positions(f)
        tip = {"x": tx, "y": ty, "marker": {"color": tc}}
        # Frame 0 resets every chunk; later frames only reveal what appears then (the replay
        # always plays from frame 0), so frames cost O(chunks), not O(frames x chunks).
        shown = range(n_chunk_traces) if f == 0 else np.flatnonzero(appear_arr == f).tolist()
        data = [{"visible": bool(appear_arr[i] <= f)} for i in shown] + [tip]
        frames.append(go.Frame(data=data, traces=list(shown) + [tip_index], name=str(f)))
    fig.frames = frames
    # Start fully drawn so the static picture (and an export) shows the whole result.
    for tr in fig.data[:n_chunk_traces]:
        tr.visible = True

    play = dict(label="▶ Replay", method="animate",
                args=[None, {"frame": {"duration": frame_ms, "redraw": True}, "fromcurrent": False,
                             "transition": {"duration": 0}, "mode": "immediate"}])
    pause = dict(label="Pause", method="animate",
                 args=[[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}])
    fig.update_layout(
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=0.0, xanchor="left", yanchor="top",
                          pad=dict(r=6, t=4), showactive=False, buttons=[play, pause],
                          font=dict(size=style.font_size))],
    )
    _ink_axes(fig)
    fig = _base_layout(fig, style, title, height=ink_height(all_pts, style, width_px=900))
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
    fig = go.Figure()
    x, y = _polyline(_split_by_pen(pts, trace.pen), extent)
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", hoverinfo="skip", showlegend=False,
                             line=dict(color="#e2e8f0", width=style.line_width * 1.8)))
    kl = np.asarray(trace.kl, dtype=np.float64)
    rp = _round(pts, extent)
    fig.add_trace(go.Scatter(
        x=rp[:, 0], y=rp[:, 1], mode="markers", showlegend=False,
        marker=dict(size=style.marker_size + 1, color=np.round(kl, 3), colorscale=SURPRISE_SCALE, cmin=0,
                    cmax=_robust_max(kl), line=dict(width=0),
                    colorbar=dict(title=dict(text="KL<br>nats", side="top"), thickness=12, len=0.8)),
        customdata=np.arange(T), hovertemplate="step %{customdata}<br>KL %{marker.color:.2f} nats<extra></extra>"))
    _add_ink_cursor(fig, pts, extent, _clip_step(step, T), style)
    _ink_axes(fig)
    return _base_layout(fig, style, title, height or ink_height(pts, style, width_px=520, extra=40))


def _add_ink_cursor(fig: go.Figure, pts: np.ndarray, extent: float, step: int | None, style: Style) -> None:
    if step is None:
        return
    p = _round(pts[step], extent)
    fig.add_trace(go.Scatter(x=[p[0]], y=[p[1]], mode="markers", showlegend=False, hoverinfo="skip",
                             marker=dict(size=style.cursor_size, color="rgba(0,0,0,0)",
                                         line=dict(color=CURSOR_COLOR, width=3))))


def step_bars_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE, title: str | None = None) -> go.Figure:
    """KL per step (top) and NLL per step (bottom) as bars along time, nats; pen lifts marked."""
    kl = np.asarray(trace.kl, dtype=np.float64)
    nll = np.asarray(trace.nll, dtype=np.float64)
    T = len(kl)
    if T == 0:
        return _empty("No steps", style, title)
    t = np.arange(T)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("KL(q ‖ p) per step", "reconstruction NLL per step"))
    fig.add_trace(go.Bar(x=t, y=np.round(kl, 3), marker=dict(color=np.round(kl, 3), colorscale=SURPRISE_SCALE,
                                                          cmin=0, cmax=_robust_max(kl), line=dict(width=0)),
                         hovertemplate="step %{x}<br>KL %{y:.2f} nats<extra></extra>", showlegend=False),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=t, y=np.round(nll, 3), marker=dict(color="#64748b", line=dict(width=0)),
                         hovertemplate="step %{x}<br>NLL %{y:.2f} nats<extra></extra>", showlegend=False),
                  row=2, col=1)
    pen_steps = np.flatnonzero(np.asarray(trace.pen) > 0.5)
    if len(pen_steps) and len(pen_steps) < 200:
        # pen lifts as faint ticks under the NLL axis: they explain the NLL spikes
        fig.add_trace(go.Scatter(x=pen_steps, y=np.zeros(len(pen_steps)), mode="markers", showlegend=False,
                                 marker=dict(symbol="triangle-up", size=style.marker_size, color=MUTED),
                                 hovertemplate="pen up at step %{x}<extra></extra>"), row=2, col=1)
    fig.update_layout(bargap=0.05)
    fig.update_yaxes(title_text="nats", row=1, col=1)
    fig.update_yaxes(title_text="nats", row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_annotations(font=dict(size=style.font_size))
    _add_time_cursor(fig, _clip_step(step, T))
    return _base_layout(fig, style, title, height=style.scaled_height(1.15))


def _add_time_cursor(fig: go.Figure, step: int | None) -> None:
    """A vertical line at ``step`` across every subplot (one layout shape per x axis)."""
    if step is None:
        return
    axes = sorted({a.plotly_name for a in fig.select_xaxes()}) or ["xaxis"]
    for name in axes:
        suffix = name[len("xaxis"):]
        fig.add_shape(type="line", x0=step, x1=step, y0=0, y1=1, xref=f"x{suffix}", yref=f"y{suffix} domain",
                      line=dict(color=CURSOR_COLOR, width=2))


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


def latent_pca_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE, title: str | None = None,
                      max_ellipses: int = 40) -> go.Figure:
    """Prior and posterior paths of z in the plane of the posterior means' two principal components.

    Shaded ellipses are the projected 1-sigma regions (every few steps); the cursor
    marks the same step on both paths.
    """
    post_mu = np.asarray(trace.post_mu, dtype=np.float64)
    if post_mu.ndim != 2 or post_mu.shape[1] == 0 or len(post_mu) == 0:
        return _empty("This model has no latent variables (RNN-GMM baseline)", style, title)
    T = len(post_mu)
    mean, W, ratio = pca_projection(post_mu)
    post = (post_mu - mean) @ W
    prior = (np.asarray(trace.prior_mu, dtype=np.float64) - mean) @ W
    every = max(1, int(np.ceil(T / max_ellipses)))
    fig = go.Figure()
    for name, center, sigma, color in (("prior", prior, trace.prior_sigma, PRIOR_COLOR),
                                       ("posterior", post, trace.post_sigma, POSTERIOR_COLOR)):
        ex, ey = _ellipses(center, np.asarray(sigma), W, every)
        fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", fill="toself", fillcolor=_rgba(color, 0.06),
                                 line=dict(color=_rgba(color, 0.18), width=0.8), hoverinfo="skip",
                                 name=f"{name} ±1σ", legendgroup=name, showlegend=False))
    for name, center, color, dash in (("prior p(z_t | h_{t-1})", prior, PRIOR_COLOR, "dot"),
                                      ("posterior q(z_t | x_t, h_{t-1})", post, POSTERIOR_COLOR, "solid")):
        c = np.round(center, 4)
        fig.add_trace(go.Scatter(x=c[:, 0], y=c[:, 1], mode="lines+markers", name=name,
                                 line=dict(color=color, width=style.line_width * 0.7, dash=dash),
                                 marker=dict(size=style.marker_size * 0.6, color=color),
                                 customdata=np.arange(T), hovertemplate="step %{customdata}<extra>" + name.split()[0]
                                 + "</extra>"))
    s = _clip_step(step, T)
    if s is not None:
        fig.add_trace(go.Scatter(x=[prior[s, 0], post[s, 0]], y=[prior[s, 1], post[s, 1]], mode="lines+markers",
                                 showlegend=False, hoverinfo="skip", line=dict(color=CURSOR_COLOR, width=1.5),
                                 marker=dict(size=style.cursor_size * 0.8, color=[PRIOR_COLOR, POSTERIOR_COLOR],
                                             line=dict(color=CURSOR_COLOR, width=3))))
    fig.update_xaxes(title_text=f"PC1 ({ratio[0]:.0%} of variance)", zeroline=False)
    fig.update_yaxes(title_text=f"PC2 ({ratio[1]:.0%})", zeroline=False, scaleanchor="x", scaleratio=1)
    return _base_layout(fig, style, title, height=style.scaled_height(1.15), legend=True)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


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
    post_mu = np.asarray(trace.post_mu, dtype=np.float64)
    if post_mu.ndim != 2 or post_mu.shape[1] == 0 or len(post_mu) == 0:
        return _empty("This model has no latent variables (RNN-GMM baseline)", style, title)
    T, Z = post_mu.shape
    dims = active_dims(trace.kl_dims, max_dims) if Z > max_dims else np.arange(Z)
    fig = make_subplots(rows=len(dims), cols=1, shared_xaxes=True, vertical_spacing=0.025)
    t = np.arange(0, T, max(1, int(np.ceil(T / max_points))))  # long inks: every k-th step is plenty
    t_band = np.concatenate([t, t[::-1]])
    for r, d in enumerate(dims, start=1):
        for name, mu, sigma, color, dash in (
                ("prior", trace.prior_mu, trace.prior_sigma, PRIOR_COLOR, "dot"),
                ("posterior", trace.post_mu, trace.post_sigma, POSTERIOR_COLOR, "solid")):
            m = np.asarray(mu, dtype=np.float64)[t, d]
            s = np.asarray(sigma, dtype=np.float64)[t, d]
            band = np.round(np.concatenate([m + s, (m - s)[::-1]]), 3)
            fig.add_trace(go.Scatter(x=t_band, y=band, fill="toself", fillcolor=_rgba(color, 0.15),
                                     line=dict(width=0), hoverinfo="skip", showlegend=False, legendgroup=name),
                          row=r, col=1)
            fig.add_trace(go.Scatter(x=t, y=np.round(m, 3), mode="lines", name=f"{name} mean ± σ",
                                     line=dict(color=color, width=style.line_width * 0.6, dash=dash),
                                     legendgroup=name, showlegend=bool(r == 1),
                                     hovertemplate=f"z{d + 1} {name}<br>step %{{x}}: %{{y:.2f}}<extra></extra>"),
                          row=r, col=1)
        fig.update_yaxes(title_text=f"z{d + 1}", row=r, col=1, zeroline=False, nticks=3,
                         title_font=dict(size=style.font_size))
    fig.update_xaxes(title_text="step", row=len(dims), col=1)
    _add_time_cursor(fig, _clip_step(step, T))
    height = max(style.height, int(style.height * 0.32 * len(dims)) + 60)
    return _base_layout(fig, style, title, height=height, legend=True)


def kl_heatmap_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE,
                      title: str | None = None) -> go.Figure:
    """Time x latent dimension heatmap of per-dimension KL: which units are active, and when."""
    kl_dims = np.asarray(trace.kl_dims, dtype=np.float64)
    if kl_dims.ndim != 2 or kl_dims.shape[1] == 0 or len(kl_dims) == 0:
        return _empty("This model has no latent variables (RNN-GMM baseline)", style, title)
    T, Z = kl_dims.shape
    fig = go.Figure(go.Heatmap(
        z=np.round(kl_dims.T, 3), x=np.arange(T), y=[f"z{d + 1}" for d in range(Z)],
        colorscale=KL_HEATMAP_SCALE, zmin=0, zmax=_robust_max(kl_dims),
        colorbar=dict(title=dict(text="nats", side="top"), thickness=12),
        hovertemplate="step %{x}, %{y}<br>KL %{z:.3f} nats<extra></extra>"))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(autorange="reversed", title_text="latent unit")
    _add_time_cursor(fig, _clip_step(step, T))
    height = int(min(max(style.height * 0.7, 26 * Z + 120), style.height * 1.6))
    return _base_layout(fig, style, title, height=height)


# ---------------------------------------------------------------- samples, training, comparison
def samples_figure(inks: Sequence, style: Style = DEFAULT_STYLE, title: str | None = None,
                   cols: int = 2) -> go.Figure:
    """Unconditional samples, one panel each, in their own colours."""
    inks = [i for i in inks if i.num_points]
    if not inks:
        return _empty("No samples", style, title)
    cols = max(1, min(cols, len(inks)))
    rows = int(np.ceil(len(inks) / cols))
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.03, vertical_spacing=0.05)
    for i, ink in enumerate(inks):
        r, c = divmod(i, cols)
        x, y = _polyline(ink.strokes, _extent(ink.points))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", hoverinfo="skip", showlegend=False,
                                 line=dict(color=color_for(i), width=style.line_width)), row=r + 1, col=c + 1)
        _ink_axes(fig, row=r + 1, col=c + 1, anchor="x" if i == 0 else f"x{i + 1}")
    return _base_layout(fig, style, title, height=int(style.height * 0.6 * rows) + (40 if title else 10))


TRAINING_SERIES = (("loss", "training loss (−ELBO / point)", INK_COLOR),
                   ("nll", "reconstruction NLL / point", "#64748b"),
                   ("kl", "KL / point", "#ea580c"),
                   ("valid_elbo", "validation ELBO / point (higher is better)", POSTERIOR_COLOR))


def training_curves_figure(history: Sequence[dict], style: Style = DEFAULT_STYLE,
                           title: str | None = None) -> go.Figure:
    """Live training curves from the progress dicts of :func:`vrnn.train.fit` (nats per point)."""
    fig = go.Figure()
    for key, label, color in TRAINING_SERIES:
        pts = [(h["step"], h[key]) for h in history
               if h.get(key) is not None and "step" in h and np.isfinite(h[key])]
        if not pts:
            continue
        x, y = zip(*pts)
        fig.add_trace(go.Scatter(x=list(x), y=np.round(y, 4), mode="lines+markers" if key == "valid_elbo" else "lines",
                                 name=label, line=dict(color=color, width=style.line_width * 0.7)))
    if not fig.data:
        return _empty("Waiting for the first training steps…", style, title, height=style.scaled_height(0.8))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="nats per point")
    return _base_layout(fig, style, title, height=style.scaled_height(0.9), legend=True)


def comparison_figure(rows: Sequence[dict], style: Style = DEFAULT_STYLE, title: str | None = None) -> go.Figure:
    """Per-point log-likelihood bounds of several models on the same ink (higher is better).

    ``rows``: dicts with ``model`` (name), ``measure`` (e.g. "ELBO", "IWAE (K=50)",
    "exact log-likelihood") and ``value`` (nats per point).
    """
    if not rows:
        return _empty("Nothing to compare", style, title)
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    colors = {m: c for m, c in zip(measures, (POSTERIOR_COLOR, PRIOR_COLOR, "#64748b", "#ea580c"))}
    fig = go.Figure()
    for m in measures:
        sel = [r for r in rows if r["measure"] == m]
        fig.add_trace(go.Bar(x=[r["model"] for r in sel], y=[round(float(r["value"]), 4) for r in sel], name=m,
                             marker_color=colors.get(m, MUTED), text=[f"{float(r['value']):.3f}" for r in sel],
                             textposition="outside", cliponaxis=False,
                             hovertemplate="%{x}<br>" + m + ": %{y:.3f} nats/point<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="nats per point")
    return _base_layout(fig, style, title, height=style.scaled_height(1.0), legend=True)


def per_step_comparison_figure(curves: dict[str, np.ndarray], step: int | None = None, style: Style = DEFAULT_STYLE,
                               title: str | None = None) -> go.Figure:
    """Negative log-likelihood (bound) per step of several models along the same ink."""
    fig = go.Figure()
    colors = (POSTERIOR_COLOR, "#64748b", PRIOR_COLOR, "#ea580c")
    T = 0
    for i, (name, values) in enumerate(curves.items()):
        v = np.asarray(values, dtype=np.float64)
        T = max(T, len(v))
        fig.add_trace(go.Scatter(x=np.arange(len(v)), y=np.round(v, 3), mode="lines", name=name,
                                 line=dict(color=colors[i % len(colors)], width=style.line_width * 0.6)))
    if not fig.data:
        return _empty("Nothing to compare", style, title)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="nats (lower is better)")
    _add_time_cursor(fig, _clip_step(step, T))
    return _base_layout(fig, style, title, height=style.scaled_height(0.9), legend=True)

