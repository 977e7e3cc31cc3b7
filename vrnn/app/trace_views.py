"""The linked views of one trace (pure plotly, no Streamlit, no torch): what the model
makes of an ink, step by step.

Five panels share one time cursor:

- **ink coloured by KL**: where the posterior had to move away from the prior;
- **KL and NLL per step**: the two costs of the ELBO along time, pen lifts marked;
- **posterior vs prior, whitened**: ``(mu_q - mu_p) / sigma_p`` on the two latent
  dimensions that carry the most KL. In these units the prior is the unit circle at
  the origin at *every* step, so the distance of a dot from the origin is how far the
  ink pushed the posterior; axis-aligned ellipses are ``sigma_q / sigma_p``;
- **mean ± σ per latent dimension**, the most informative dimensions first (sorted by KL);
- **which unit works when**: each latent unit's KL over time, scaled to the unit's own
  peak, units sorted by their mean KL.

Step 0 is the given start point: it is drawn, but it sets no scale anywhere (its
prior has seen no ink and sits far from the rest).

:func:`trace_views_figure` puts all of them in one figure whose frames move only the
cursor traces, so *Play* and the time slider run in the browser (plotly animation,
``redraw: false``), with no server round trip per step. The single-view builders
(:func:`kl_ink_figure`, ...) make the same panels as figures of their own (exports).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from .figures import (
    CURSOR_COLOR,
    DEFAULT_STYLE,
    INK_COLOR,
    NO_LATENTS,
    POSTERIOR_COLOR,
    PRIOR_COLOR,
    SURPRISE_SCALE,
    Style,
    _axis_name,
    _axis_ref,
    _empty,
    _extent,
    _figure,
    _polyline,
    _rgba,
    _round,
    _split_by_pen,
    scale_color,
)
from .viewport import STACK_BELOW_PX

KL_SHARE_SCALE = [[0.0, "#f8fafc"], [0.2, "#fde68a"], [0.55, "#f97316"], [1.0, "#7f1d1d"]]
NLL_COLOR = "#64748b"
PEN_LIFT_COLOR = "#ea580c"
#: Below this mean KL per step (nats) the latent is called nearly unused.
UNUSED_KL = 0.02

CAPTIONS = {
    "kl_ink": "Red where the ink surprised the model: the posterior had to move away from the prior there.",
    "bars": "The two costs of the ELBO per step: KL (information the latent took from the ink) and "
            "NLL (how badly the next point was predicted); triangles are pen lifts.",
    "departure": "The prior is the unit circle at every step; each dot is the posterior's (μq − μp)/σp "
                 "at one step: far from the centre, the ink changed the model's mind. ×: pen lifts, "
                 "ellipses: σq/σp.",
    "dims": "Prior (dotted) and posterior (solid) mean ± σ over time, one band per dimension (each on its "
            "own scale), most KL on top; where they part, that dimension is reading the ink.",
    "heatmap": "Each row is one latent unit's KL over time, scaled to that unit's own peak and sorted by "
               "mean KL: units that light up at different moments (pen lifts, stroke starts) do different jobs.",
}


# ---------------------------------------------------------------- small helpers
#: Panels whose y axis is labelled by latent unit ("z12 · 0.35"): they get a left gutter.
LABELLED = ("dims", "heatmap")

def _has_latents(trace) -> bool:
    mu = np.asarray(trace.post_mu)
    return mu.ndim == 2 and mu.shape[1] > 0 and len(mu) > 0


def _first(T: int) -> int:
    """The first step that may set a scale: step 0 is the given start point."""
    return 1 if T > 2 else 0


def _robust_range(values, lo_pct: float = 1.0, hi_pct: float = 99.0, pad: float = 0.08,
                  include: tuple[float, ...] = ()) -> list[float]:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        lo, hi = -1.0, 1.0
    else:
        lo, hi = (float(x) for x in np.percentile(v, [lo_pct, hi_pct]))
    for x in include:
        lo, hi = min(lo, x), max(hi, x)
    if hi - lo < 1e-6:
        lo, hi = lo - 0.5, hi + 0.5
    p = pad * (hi - lo)
    return [round(lo - p, 4), round(hi + p, 4)]


def kl_by_dim(trace) -> np.ndarray:
    """Mean KL per step of every latent dimension, step 0 left out (nats)."""
    kl = np.asarray(trace.kl_dims, dtype=np.float64)
    if kl.ndim != 2 or kl.shape[1] == 0:
        return np.zeros(0)
    rows = kl[_first(len(kl)):]
    return rows.mean(axis=0) if len(rows) else np.zeros(kl.shape[1])


def dims_by_kl(trace) -> np.ndarray:
    """Latent dimensions sorted by their mean KL (largest first; ties by index)."""
    return np.argsort(-kl_by_dim(trace), kind="stable")


def dim_label(d: int) -> str:
    return f"z{d + 1}"


def whitened_departure(trace) -> tuple[np.ndarray, np.ndarray]:
    """``(mu_q - mu_p) / sigma_p`` and ``sigma_q / sigma_p``, both ``(T, Z)``: the posterior
    in the units of the prior, where the prior is a standard normal at every step."""
    mu_q = np.asarray(trace.post_mu, dtype=np.float64)
    mu_p = np.asarray(trace.prior_mu, dtype=np.float64)
    s_p = np.maximum(np.asarray(trace.prior_sigma, dtype=np.float64), 1e-6)
    return (mu_q - mu_p) / s_p, np.asarray(trace.post_sigma, dtype=np.float64) / s_p


def latent_usage(trace) -> float:
    """Mean KL per step over steps >= 1 (nats): how much the latent is used on this ink."""
    kl = np.asarray(trace.kl, dtype=np.float64)
    rows = kl[_first(len(kl)):]
    return float(rows.mean()) if len(rows) else 0.0


def _time_cursor_trace(step: int, y_range, ax: int) -> dict:
    return dict(type="scatter", x=[step, step], y=list(y_range), mode="lines", hoverinfo="skip", showlegend=False,
                line=dict(color=CURSOR_COLOR, width=2), xaxis=_axis_ref("x", ax), yaxis=_axis_ref("y", ax),
                meta="time cursor")


def _heading(title: str, caption: str | None, x: float, y_top: float, style: Style, width_px: int) -> list[dict]:
    """A panel's title and its one-sentence caption, as paper annotations just above ``y_top``."""
    fs = style.font_size
    text = _wrap(caption, width_px, fs - 1) if caption else ""
    lines = text.count("<br>") + 1 if caption else 0
    title = _wrap(title, width_px, int((fs + 1) * 1.1), max_lines=2)  # bold: a little wider per character
    notes = [dict(text="<b>" + title.replace("<br>", "</b><br><b>") + "</b>", x=x, y=y_top, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                  showarrow=False, yshift=int(lines * (fs - 1) * 1.3 + 6), align="left",
                  font=dict(size=fs + 1, color=INK_COLOR))]
    if caption:
        notes.append(dict(text=text, x=x, y=y_top, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                          showarrow=False, yshift=4, align="left", font=dict(size=fs - 1, color="#475569")))
    return notes


def _wrap(text: str, width_px: int, font_size: int, max_lines: int = 6) -> str:
    """Break a caption into lines that fit ``width_px`` (plotly does not wrap text)."""
    per_line = max(20, int(width_px / (0.6 * font_size)))
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > per_line:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [" ".join(lines[max_lines - 1:])]
    return "<br>".join(lines)


@dataclass
class Panel:
    """Traces and axes of one view; ``cursor(step)`` gives the new data of its cursor traces
    (the traces at ``cursor_index`` in ``data``, same order)."""

    data: list[dict]
    layout: dict
    notes: list[dict] = field(default_factory=list)
    cursor_index: list[int] = field(default_factory=list)
    cursor: Callable[[int], list[dict]] = lambda step: []
    lines: int = 2  # caption lines above the panel


# ---------------------------------------------------------------- panels
def kl_ink_panel(trace, step: int, ax: int, xd, yd, style: Style, colorbar_px: int | None = None) -> Panel:
    pts = np.asarray(trace.points, dtype=np.float64)
    T = len(pts)
    extent = _extent(pts)
    x, y = _polyline(_split_by_pen(pts, trace.pen), extent)
    kl = np.asarray(trace.kl, dtype=np.float64)
    cmax = _kl_cmax(kl)
    rp = _round(pts, extent)
    refs = dict(xaxis=_axis_ref("x", ax), yaxis=_axis_ref("y", ax))
    data = [
        dict(type="scatter", x=x, y=y, mode="lines", line=dict(color="#e2e8f0", width=style.line_width * 1.8),
             hoverinfo="skip", showlegend=False, **refs),
        dict(type="scatter", x=rp[:, 0], y=rp[:, 1], mode="markers", showlegend=False,
             marker=dict(size=style.marker_size + 1, color=np.round(kl, 3), colorscale=SURPRISE_SCALE, cmin=0,
                         cmax=cmax, line=dict(width=0),
                         colorbar=dict(title=dict(text="KL<br>nats", side="top"), thickness=10,
                                       **({"len": colorbar_px, "lenmode": "pixels"} if colorbar_px else
                                          {"len": yd[1] - yd[0]}),
                                       x=xd[1] + 0.01, xanchor="left", y=(yd[0] + yd[1]) / 2, yanchor="middle")),
             customdata=np.arange(T), hovertemplate="step %{customdata}<br>KL %{marker.color:.2f} nats<extra></extra>",
             **refs),
    ]

    def cursor(s: int) -> list[dict]:
        s = int(np.clip(s, 0, T - 1))
        return [dict(x=[float(rp[s, 0])], y=[float(rp[s, 1])]),
                dict(text=[f"step {s}: KL {kl[s]:.2f}, NLL {float(trace.nll[s]):.2f} nats"])]

    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    pad_x, pad_y = 0.03 * span[0] + 0.02 * span[1], 0.08 * span[1] + 0.01 * span[0]
    first = cursor(step)
    data.append(dict(type="scatter", mode="markers", showlegend=False, hoverinfo="skip", **first[0], **refs,
                     marker=dict(size=style.cursor_size, color="rgba(0,0,0,0)", line=dict(color=CURSOR_COLOR, width=3))))
    data.append(dict(type="scatter", mode="text", showlegend=False, hoverinfo="skip", x=[float(lo[0] - pad_x)],
                     y=[float(hi[1] + pad_y)], textposition="bottom right", **first[1], **refs,
                     textfont=dict(size=style.font_size, color=CURSOR_COLOR)))
    bottom = hi[1] + pad_y + max(0.3 * span[1], 0.035 * span[0])  # room for the step read-out
    layout = {
        _axis_name("x", ax): dict(visible=False, domain=list(xd), anchor=_axis_ref("y", ax), constrain="domain",
                                  range=[float(lo[0] - pad_x), float(hi[0] + pad_x)], autorange=False),
        _axis_name("y", ax): dict(visible=False, domain=list(yd), anchor=_axis_ref("x", ax), scaleanchor=_axis_ref("x", ax),
                                  scaleratio=1, range=[float(bottom), float(lo[1] - pad_y)], autorange=False),
    }
    return Panel(data, layout, cursor_index=[2, 3], cursor=cursor)


def _kl_cmax(kl: np.ndarray) -> float:
    rows = np.asarray(kl, dtype=np.float64)[_first(len(kl)):]
    rows = rows[np.isfinite(rows)]
    if rows.size == 0:
        return 1.0
    return float(max(np.percentile(rows, 98), 1e-3))


def step_bars_panel(trace, step: int, axes: tuple[int, int], xd, yd, style: Style, max_bars: int = 60) -> Panel:
    """KL per step (upper axis) and NLL per step (lower axis); step 0 sets neither range."""
    kl = np.round(np.asarray(trace.kl, dtype=np.float64), 3)
    nll = np.round(np.asarray(trace.nll, dtype=np.float64), 3)
    T = len(kl)
    t = np.arange(T)
    first = _first(T)
    bars = T <= max_bars
    cmax = _kl_cmax(kl)
    kl_range = [0.0, round(cmax * 1.15, 4)]
    nll_range = _robust_range(nll[first:], 0.5, 99.5)
    gap = 0.06 * (yd[1] - yd[0])
    mid = (yd[0] + yd[1]) / 2
    doms = [(mid + gap / 2, yd[1]), (yd[0], mid - gap / 2)]
    data = []
    a_kl, a_nll = axes
    if bars:
        # one colour string per bar, computed here: plotly.js's bar colorscale path logs
        # "Invalid color specifier" per bar in some builds; explicit colours never do
        data.append(dict(type="bar", x=t, y=kl, marker=dict(color=[scale_color(SURPRISE_SCALE, v / cmax) for v in kl],
                                                             line=dict(width=0)),
                         xaxis=_axis_ref("x", a_kl), yaxis=_axis_ref("y", a_kl), showlegend=False,
                         hovertemplate="step %{x}<br>KL %{y:.2f} nats<extra></extra>"))
        data.append(dict(type="bar", x=t, y=nll, marker=dict(color=NLL_COLOR, line=dict(width=0)),
                         xaxis=_axis_ref("x", a_nll), yaxis=_axis_ref("y", a_nll), showlegend=False,
                         hovertemplate="step %{x}<br>NLL %{y:.2f} nats<extra></extra>"))
    else:  # long inks: a filled step outline is one SVG path instead of one rectangle per step
        for a, y, color, label in ((a_kl, kl, SURPRISE_SCALE[2][1], "KL"), (a_nll, nll, NLL_COLOR, "NLL")):
            data.append(dict(type="scatter", x=t, y=y, mode="lines", line=dict(shape="hvh", width=1, color=color),
                             fill="tozeroy", fillcolor=_rgba(color, 0.55), xaxis=_axis_ref("x", a),
                             yaxis=_axis_ref("y", a), showlegend=False,
                             hovertemplate=f"step %{{x}}<br>{label} %{{y:.2f}} nats<extra></extra>"))
    pen_steps = np.flatnonzero(np.asarray(trace.pen) > 0.5)
    if 0 < len(pen_steps) < 300:
        data.append(dict(type="scatter", x=pen_steps, y=np.full(len(pen_steps), nll_range[0]), mode="markers",
                         showlegend=False, xaxis=_axis_ref("x", a_nll), yaxis=_axis_ref("y", a_nll),
                         hovertemplate="pen lift at step %{x}<extra></extra>", cliponaxis=False,
                         marker=dict(symbol="triangle-up", size=style.marker_size + 1, color=PEN_LIFT_COLOR)))
    x_range = [-0.5, T - 0.5]
    layout = {
        _axis_name("x", a_kl): dict(domain=list(xd), anchor=_axis_ref("y", a_kl), range=x_range, showticklabels=False),
        _axis_name("y", a_kl): dict(domain=list(doms[0]), anchor=_axis_ref("x", a_kl), range=kl_range,
                                    title=dict(text="KL, nats"), nticks=4),
        _axis_name("x", a_nll): dict(domain=list(xd), anchor=_axis_ref("y", a_nll), range=x_range,
                                     matches=_axis_ref("x", a_kl), title=dict(text="step", standoff=4)),
        _axis_name("y", a_nll): dict(domain=list(doms[1]), anchor=_axis_ref("x", a_nll), range=nll_range,
                                     title=dict(text="NLL, nats"), nticks=4),
    }
    n = len(data)
    data.append(_time_cursor_trace(step, kl_range, a_kl))
    data.append(_time_cursor_trace(step, nll_range, a_nll))

    def cursor(s: int) -> list[dict]:
        return [dict(x=[s, s]), dict(x=[s, s])]

    return Panel(data, layout, cursor_index=[n, n + 1], cursor=cursor)


def departure_panel(trace, step: int, ax: int, xd, yd, style: Style, max_ellipses: int = 12) -> Panel:
    """Posterior in the prior's units on the two dimensions with the most KL (see the module doc)."""
    dep, ratio = whitened_departure(trace)
    T, Z = dep.shape
    order = dims_by_kl(trace)
    a = int(order[0])
    b = int(order[1]) if Z > 1 else None
    first = _first(T)
    steps = np.arange(first, T)
    xs = dep[first:, a]
    ys = dep[first:, b] if b is not None else np.zeros(len(steps))
    pen = np.asarray(trace.pen)[first:] > 0.5
    refs = dict(xaxis=_axis_ref("x", ax), yaxis=_axis_ref("y", ax))
    theta = np.linspace(0, 2 * np.pi, 49)
    data = [dict(type="scatter", x=np.round(np.cos(theta), 3), y=np.round(np.sin(theta), 3), mode="lines",
                 name="prior p(z | h): unit circle", line=dict(color=PRIOR_COLOR, width=style.line_width * 0.8, dash="dot"),
                 fill="toself", fillcolor=_rgba(PRIOR_COLOR, 0.06), hoverinfo="skip", **refs)]
    # thinned uncertainty marks: every few steps, sigma_q / sigma_p along each axis
    every = max(1, int(np.ceil(len(steps) / max_ellipses)))
    ex, ey = [], []
    circle = np.stack([np.cos(theta[::3]), np.sin(theta[::3])])
    for i in range(0, len(steps), every):
        t = steps[i]
        rx = ratio[t, a]
        ry = ratio[t, b] if b is not None else 0.0
        ex.extend(np.round(xs[i] + rx * circle[0], 3).tolist() + [None])
        ey.extend(np.round(ys[i] + ry * circle[1], 3).tolist() + [None])
    data.append(dict(type="scatter", x=ex, y=ey, mode="lines", line=dict(color=_rgba(POSTERIOR_COLOR, 0.18), width=0.8),
                     hoverinfo="skip", showlegend=False, **refs))
    data.append(dict(type="scatter", x=np.round(xs, 3), y=np.round(ys, 3), mode="lines", showlegend=False,
                     hoverinfo="skip", line=dict(color=_rgba(POSTERIOR_COLOR, 0.3), width=1), **refs))
    data.append(dict(type="scatter", x=np.round(xs[~pen], 3), y=np.round(ys[~pen], 3), mode="markers",
                     name="posterior q(z | x, h), pen down", customdata=steps[~pen],
                     marker=dict(size=style.marker_size, color=steps[~pen], colorscale=[[0, "#99f6e4"], [1, "#115e59"]],
                                 cmin=first, cmax=max(T - 1, first + 1), line=dict(width=0)),
                     hovertemplate="step %{customdata}<br>(%{x:.2f}, %{y:.2f}) σp<extra></extra>", **refs))
    data.append(dict(type="scatter", x=np.round(xs[pen], 3), y=np.round(ys[pen], 3), mode="markers",
                     name="pen lift", customdata=steps[pen],
                     marker=dict(size=style.marker_size + 3, color=PEN_LIFT_COLOR, symbol="x-thin",
                                 line=dict(width=2, color=PEN_LIFT_COLOR)),
                     hovertemplate="pen lift, step %{customdata}<br>(%{x:.2f}, %{y:.2f}) σp<extra></extra>", **refs))

    def cursor(s: int) -> list[dict]:
        s = int(np.clip(s, first, T - 1))
        cx, cy = dep[s, a], (dep[s, b] if b is not None else 0.0)
        rx, ry = ratio[s, a], (ratio[s, b] if b is not None else 0.0)
        return [dict(x=[round(float(cx), 3)], y=[round(float(cy), 3)]),
                dict(x=np.round(cx + rx * circle[0], 3).tolist(), y=np.round(cy + ry * circle[1], 3).tolist())]

    n = len(data)
    c = cursor(step)
    data.append(dict(type="scatter", mode="markers", showlegend=False, hoverinfo="skip", **c[0], **refs,
                     marker=dict(size=style.cursor_size * 0.9, color=POSTERIOR_COLOR, line=dict(color=CURSOR_COLOR, width=3))))
    data.append(dict(type="scatter", mode="lines", showlegend=False, hoverinfo="skip", **c[1], **refs,
                     line=dict(color=CURSOR_COLOR, width=1.5)))
    x_range = _robust_range(xs, 2, 98, 0.1, include=(-1.4, 1.4))
    y_range = _robust_range(ys, 2, 98, 0.1, include=(-1.4, 1.4))
    kl = kl_by_dim(trace)
    layout = {
        _axis_name("x", ax): dict(domain=list(xd), anchor=_axis_ref("y", ax), range=x_range, constrain="domain",
                                  title=dict(text=f"{dim_label(a)}: (μq − μp)/σp · KL {kl[a]:.2f} nats/step",
                                             standoff=4), zeroline=True, zerolinecolor="#e2e8f0"),
        _axis_name("y", ax): dict(domain=list(yd), anchor=_axis_ref("x", ax), range=y_range, scaleanchor=_axis_ref("x", ax),
                                  scaleratio=1, constrain="domain", zeroline=True, zerolinecolor="#e2e8f0",
                                  # short: the rotated title must fit the square plot's height at presentation sizes
                                  title=dict(text=(f"{dim_label(b)} · KL {kl[b]:.2f}" if b is not None
                                                   else "one latent dimension only"), standoff=4)),
    }
    notes = []
    usage = latent_usage(trace)
    if usage < UNUSED_KL:
        notes.append(dict(text=f"latent nearly unused on this ink: {usage:.3f} nats of KL per step",
                          x=(xd[0] + xd[1]) / 2, y=yd[1], xref="paper", yref="paper", yanchor="top", showarrow=False,
                          font=dict(size=style.font_size, color=PEN_LIFT_COLOR), bgcolor="rgba(255,255,255,0.8)"))
    return Panel(data, layout, notes, cursor_index=[n, n + 1], cursor=cursor)


def latent_dims_panel(trace, step: int, ax: int, xd, yd, style: Style, k: int = 6, max_points: int = 300) -> Panel:
    """Mean ± σ of prior and posterior for the ``k`` dimensions with the most KL, top first, in
    one subplot: each dimension in its own band, scaled to its own range (steps >= 1); hover
    gives the values. One subplot instead of ``k`` keeps the browser's redraw cheap."""
    T, Z = np.asarray(trace.post_mu).shape
    dims = dims_by_kl(trace)[: min(k, Z)]
    kl = kl_by_dim(trace)
    first = _first(T)
    t = np.arange(0, T, max(1, int(np.ceil(T / max_points))))
    t_band = np.concatenate([t, t[::-1]])
    n = len(dims)
    refs = dict(xaxis=_axis_ref("x", ax), yaxis=_axis_ref("y", ax))
    data, ticks, labels = [], [], []
    for r, d in enumerate(dims):
        base = n - 1 - r  # the top band holds the dimension with the most KL
        stats = [(name, np.asarray(mu, dtype=np.float64)[:, d], np.asarray(sigma, dtype=np.float64)[:, d], color, dash)
                 for name, mu, sigma, color, dash in (
                     ("prior", trace.prior_mu, trace.prior_sigma, PRIOR_COLOR, "dot"),
                     ("posterior", trace.post_mu, trace.post_sigma, POSTERIOR_COLOR, "solid"))]
        lo, hi = _robust_range(np.concatenate([np.concatenate([m[first:] + sg[first:], m[first:] - sg[first:]])
                                               for _, m, sg, _, _ in stats]), 1, 99, 0.02)

        def band_y(v, base=base, lo=lo, hi=hi):
            return np.round(base + 0.08 + 0.84 * (np.clip(v, lo, hi) - lo) / (hi - lo), 4)

        for name, m_all, s_all, color, dash in stats:
            m, sg = m_all[t], s_all[t]
            data.append(dict(type="scatter", x=t_band, y=band_y(np.concatenate([m + sg, (m - sg)[::-1]])),
                             mode="lines", line=dict(width=0, color="rgba(0,0,0,0)"), fill="toself",
                             fillcolor=_rgba(color, 0.15), hoverinfo="skip", showlegend=False, **refs))
            data.append(dict(type="scatter", x=t, y=band_y(m), mode="lines", showlegend=False, customdata=np.round(m, 3),
                             line=dict(color=color, width=style.line_width * 0.6, dash=dash),
                             hovertemplate=f"{dim_label(d)} {name} mean<br>step %{{x}}: %{{customdata:.2f}}<extra></extra>",
                             **refs))
        ticks.append(base + 0.5)
        labels.append(f"{dim_label(d)} · {kl[d]:.2f}")
    sep_x, sep_y = [], []
    for r in range(1, n):
        sep_x += [-0.5, T - 0.5, None]
        sep_y += [r, r, None]
    if sep_x:
        data.append(dict(type="scatter", x=sep_x, y=sep_y, mode="lines", hoverinfo="skip", showlegend=False,
                         line=dict(color="#cbd5e1", width=1), **refs))
    y_range = [0.0, float(max(n, 1))]
    layout = {
        _axis_name("x", ax): dict(domain=list(xd), anchor=_axis_ref("y", ax), range=[-0.5, T - 0.5],
                                  title=dict(text="step", standoff=4)),
        _axis_name("y", ax): dict(domain=list(yd), anchor=_axis_ref("x", ax), range=y_range, tickvals=ticks,
                                  ticktext=labels, showgrid=False, tickfont=dict(size=style.font_size - 2),
                                  title=dict(text="dimension · KL, nats/step")),
    }
    data.append(_time_cursor_trace(step, y_range, ax))
    return Panel(data, layout, cursor_index=[len(data) - 1], cursor=lambda s: [dict(x=[s, s])])


def kl_activity(trace) -> tuple[np.ndarray, np.ndarray]:
    """``(order, activity)``: units sorted by their KL (steps >= 1, largest first) and
    ``activity (Z, T)``, each unit's KL per step divided by that unit's own 98th
    percentile (clipped to 1), so a rarely used unit's bursts show as clearly as a busy
    one's and rows differ by *when* a unit works, not by how much. Step 0 is NaN."""
    kl = np.asarray(trace.kl_dims, dtype=np.float64)
    T, Z = kl.shape
    order = dims_by_kl(trace)
    first = _first(T)
    rows = kl[first:] if T > first else kl
    peak = np.percentile(rows, 98, axis=0) if len(rows) else np.ones(Z)
    peak = np.maximum(peak, 1e-6)
    act = np.clip(kl / peak, 0.0, 1.0)
    act[:first] = np.nan
    return order, act[:, order].T


def kl_heatmap_panel(trace, step: int, ax: int, xd, yd, style: Style) -> Panel:
    order, act = kl_activity(trace)
    Z, T = act.shape
    kl = kl_by_dim(trace)
    labels = [f"{dim_label(d)} · {kl[d]:.2f}" for d in order]
    z = np.where(np.isfinite(act), np.round(act, 2), None)
    refs = dict(xaxis=_axis_ref("x", ax), yaxis=_axis_ref("y", ax))
    data = [dict(type="heatmap", z=z.tolist(), x=np.arange(T), y=labels, colorscale=KL_SHARE_SCALE, zmin=0, zmax=1,
                 colorbar=dict(title=dict(text="share<br>of its<br>peak", side="top"), thickness=10,
                               len=yd[1] - yd[0], y=(yd[0] + yd[1]) / 2, yanchor="middle", x=xd[1] + 0.005,
                               xanchor="left"),
                 hovertemplate="step %{x}, %{y} nats/step<br>%{z:.0%} of this unit's peak KL<extra></extra>",
                 hoverongaps=False, **refs)]
    y_range = [Z - 0.5, -0.5]
    layout = {
        _axis_name("x", ax): dict(domain=list(xd), anchor=_axis_ref("y", ax), range=[-0.5, T - 0.5],
                                  title=dict(text="step", standoff=4)),
        _axis_name("y", ax): dict(domain=list(yd), anchor=_axis_ref("x", ax), range=y_range, autorange=False,
                                  title=dict(text="latent unit · mean KL"), tickfont=dict(size=style.font_size - 2)),
    }
    data.append(_time_cursor_trace(step, y_range, ax))
    return Panel(data, layout, cursor_index=[1], cursor=lambda s: [dict(x=[s, s])])


# ---------------------------------------------------------------- figures
def _single(panel: Panel, style: Style, title: str | None, height: int, legend: bool = False) -> go.Figure:
    layout = dict(panel.layout)
    if panel.notes:
        layout["annotations"] = panel.notes
    return _figure(panel.data, layout, style, title, height=height, legend=legend)


def _start_step(step, T: int) -> int:
    return int(np.clip(0 if step is None else step, 0, max(T - 1, 0)))


def kl_ink_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE, title: str | None = None,
                  height: int | None = None) -> go.Figure:
    """The (preprocessed) ink with each step coloured by its KL: where the model is surprised."""
    T = len(np.asarray(trace.points))
    if T == 0:
        return _empty("No steps", style, title, height)
    return _single(kl_ink_panel(trace, _start_step(step, T), 0, (0, 0.92), (0, 1), style), style, title,
                   height or style.height)


def step_bars_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE, title: str | None = None,
                     max_bars: int = 60) -> go.Figure:
    """KL per step (top) and NLL per step (bottom), nats; pen lifts marked; step 0 sets no range."""
    T = len(np.asarray(trace.kl))
    if T == 0:
        return _empty("No steps", style, title)
    return _single(step_bars_panel(trace, _start_step(step, T), (0, 1), (0, 1), (0, 1), style, max_bars), style, title,
                   style.scaled_height(1.1))


def latent_departure_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE,
                            title: str | None = None) -> go.Figure:
    """The posterior in the prior's units, ``(mu_q - mu_p) / sigma_p``, on the two top-KL dimensions."""
    if not _has_latents(trace):
        return _empty(NO_LATENTS, style, title)
    T = len(np.asarray(trace.post_mu))
    return _single(departure_panel(trace, _start_step(step, T), 0, (0, 1), (0, 1), style), style, title,
                   style.scaled_height(1.2), legend=True)


def latent_dims_figure(trace, step: int | None = None, max_dims: int = 6, style: Style = DEFAULT_STYLE,
                       title: str | None = None, max_points: int = 300) -> go.Figure:
    """Prior and posterior mean ± σ over time, one panel per latent dimension, sorted by KL."""
    if not _has_latents(trace):
        return _empty(NO_LATENTS, style, title)
    T, Z = np.asarray(trace.post_mu).shape
    k = min(Z, max_dims)
    return _single(latent_dims_panel(trace, _start_step(step, T), 0, (0, 1), (0, 1), style, k, max_points),
                   style, title, max(style.height, int(style.height * 0.3 * k) + 60))


def kl_heatmap_figure(trace, step: int | None = None, style: Style = DEFAULT_STYLE,
                      title: str | None = None) -> go.Figure:
    """Each unit's KL over time scaled to its own peak, units sorted by mean KL."""
    if not _has_latents(trace):
        return _empty(NO_LATENTS, style, title)
    T, Z = np.asarray(trace.kl_dims).shape
    height = int(min(max(style.height * 0.7, 22 * Z + 110), style.height * 1.6))
    return _single(kl_heatmap_panel(trace, _start_step(step, T), 0, (0, 0.9), (0, 1), style), style, title, height)


def shown_dims(trace, max_dims: int = 6) -> list[int]:
    """The latent dimensions the mean ± σ view shows, in its order (0-based)."""
    Z = np.asarray(trace.post_mu).shape[1] if _has_latents(trace) else 0
    return [int(d) for d in dims_by_kl(trace)[: min(Z, max_dims)]] if Z else []


def _player_spec(data: list[dict], panels: list[Panel], cursor_slots: list[list[int]], T: int) -> dict:
    """Per-step positions and looks of every cursor trace, for ``player.js``."""
    cursors, readout = [], [""] * T
    for p, slots in zip(panels, cursor_slots):
        per_step = [p.cursor(s) for s in range(T)]
        for j, idx in enumerate(slots):
            d = data[idx]
            mode = d.get("mode", "lines")
            if mode == "text":
                readout = [str(per_step[s][j]["text"][0]) for s in range(T)]
                continue
            marker, line = d.get("marker") or {}, d.get("line") or {}
            mline = marker.get("line") or {}
            is_marker = mode == "markers"
            if d.get("meta") == "time cursor":  # a vertical line at x = step across its axes
                cursors.append({"xaxis": _axis_name("x", _axis_index(d.get("xaxis", "x"))),
                                "yaxis": _axis_name("y", _axis_index(d.get("yaxis", "y"))), "mode": "vline",
                                "color": line.get("color") or CURSOR_COLOR, "width": float(line.get("width") or 2)})
                continue
            cursors.append({
                "xaxis": _axis_name("x", _axis_index(d.get("xaxis", "x"))),
                "yaxis": _axis_name("y", _axis_index(d.get("yaxis", "y"))),
                "mode": "markers" if is_marker else "lines",
                "color": (mline.get("color") if is_marker else line.get("color")) or CURSOR_COLOR,
                "width": float((mline.get("width") if is_marker else line.get("width")) or 2),
                "size": float(marker.get("size") or 10),
                "fill": marker.get("color") if is_marker and isinstance(marker.get("color"), str) else None,
                "x": [np.round(np.asarray(per_step[s][j].get("x", d["x"]), dtype=float), 4).tolist() for s in range(T)],
                "y": [np.round(np.asarray(per_step[s][j].get("y", d["y"]), dtype=float), 4).tolist() for s in range(T)],
            })
    return {"steps": T, "steps_per_s": float(max(20.0, T / 15.0)), "cursors": cursors, "readout": readout}


def _axis_index(ref: str) -> int:
    """``"x"`` -> 0, ``"x3"`` -> 2."""
    tail = ref.lstrip("xy")
    return int(tail) - 1 if tail else 0


def trace_views(trace, style: Style = DEFAULT_STYLE, max_dims: int = 6, width_px: int = 1000):
    """The app's linked views: ``(figure without cursors, player spec)`` for
    :func:`vrnn.app.player.time_player`, which draws the cursors and plays them in the browser."""
    return trace_views_figure(trace, style, max_dims=max_dims, width_px=width_px, animated=False)


def trace_views_figure(trace, style: Style = DEFAULT_STYLE, step: int = 0, max_dims: int = 6,
                       max_frames: int = 240, fps: int = 20, width_px: int = 1000, animated: bool = True):
    """Every linked view of ``trace`` in one figure with a time slider and Play / Pause on top.

    Frames update only the cursor traces (``redraw: false``), so playback and scrubbing
    run in the browser at the display's pace. Long inks get every k-th step as a frame
    (at most ``max_frames``); the slider still names real step numbers. ``width_px`` is
    the width the figure is expected to get (captions are wrapped for it).
    """
    T = int(len(np.asarray(trace.kl)))
    if T == 0:
        empty = _empty("No steps", style)
        return empty if animated else (empty, {"steps": 0, "steps_per_s": 20.0, "cursors": [], "readout": []})
    latent = _has_latents(trace)
    fs = style.font_size
    pts = np.asarray(trace.points, dtype=np.float64)
    span = np.ptp(pts, axis=0) if len(pts) > 1 else np.ones(2)
    wide = span[0] > 2.5 * max(span[1], 1e-9)  # a line of writing: the ink gets a row of its own
    Z = np.asarray(trace.kl_dims).shape[1] if latent else 0
    heat_px = int(min(max(18 * Z + 40, style.height * 0.55), style.height * 1.2))
    # vertical plan in pixels: the player on top, then rows of panels, each under a heading
    player = int(fs * 6.5) if animated else 4  # the in-figure slider and buttons (exports)
    stacked = width_px < STACK_BELOW_PX  # a narrow page: one panel per row, each full width
    # text widths of the headings: a full-width panel gets the page less the left margin
    full_px = int(0.92 * (width_px - 3.6 * fs - 10))
    half_px = full_px if stacked else int(width_px * 0.37)
    caption_lines = max(_wrap(c, half_px, fs - 1).count("<br>") + 1 for c in CAPTIONS.values())
    head = int(fs * 3.4 + (fs - 1) * 1.3 * caption_lines + 8)  # title (up to 2 lines) and caption above each panel
    under = int(fs * 3.5)  # room for an x-axis title under a panel
    if stacked:
        ink_px = int(np.clip(width_px * 0.9 * 1.4 * span[1] / span[0], 90, 260)) if wide else int(style.height * 1.05)
        rows = [ink_px] + ([int(style.height * 1.05), int(style.height * 1.05), int(style.height * 0.8), heat_px]
                           if latent else [int(style.height * 0.8)])
    elif wide:
        ink_px = int(np.clip(width_px * 0.9 * 1.4 * span[1] / span[0], 90, 260))
        rows = [ink_px] + ([int(style.height * 1.05), int(style.height * 0.8), heat_px] if latent
                           else [int(style.height * 0.8)])
    else:
        rows = [int(style.height * 1.05), int(style.height * (1.05 if latent else 0.75))] + ([heat_px] if latent else [])
    height = player + sum(rows) + (head + under) * len(rows)
    y = 1.0 - player / height

    def band(px: int) -> tuple[float, float]:
        nonlocal y
        top = y - head / height
        lo = top - px / height
        y = lo - under / height
        return (max(lo, 0.0), top)

    left, right = (0.0, 0.40), (0.58, 0.95)
    full = (0.0, 0.93)
    panels: list[Panel] = []
    s0 = _start_step(step, T)

    def add(p: Panel, title: str, caption: str, xd, yd, px: int, shift: float = 0.0) -> None:
        p.notes += _heading(title, caption, xd[0] - shift, yd[1], style, px)
        panels.append(p)

    kl_title = "Where the model is surprised: KL along the ink"
    dims_title = (f"Mean ± σ of the {min(Z, max_dims)} of {Z} latent dimensions with the most KL" if latent else "")
    bars_title = "KL and NLL per step" if latent else "KL and NLL per step (the RNN-GMM has no latent: its KL is zero)"
    k = min(Z, max_dims)
    # each panel: (builder(first axis, x domain, y domain), title, caption, axes it takes)
    builders = {
        "kl": (lambda a, xd, yd: kl_ink_panel(trace, s0, a, xd, yd, style, colorbar_px=max(rows[0], 110))
               if xd is full else kl_ink_panel(trace, s0, a, xd, yd, style), kl_title, CAPTIONS["kl_ink"], 1),
        "departure": (lambda a, xd, yd: departure_panel(trace, s0, a, xd, yd, style),
                      "Posterior vs prior, whitened", CAPTIONS["departure"], 1),
        "dims": (lambda a, xd, yd: latent_dims_panel(trace, s0, a, xd, yd, style, k), dims_title, CAPTIONS["dims"], 1),
        "bars": (lambda a, xd, yd: step_bars_panel(trace, s0, (a, a + 1), xd, yd, style), bars_title,
                 CAPTIONS["bars"], 2),
        "heatmap": (lambda a, xd, yd: kl_heatmap_panel(trace, s0, a, xd, yd, style), "Which latent unit works when",
                    CAPTIONS["heatmap"], 1),
    }
    # the rows of panels, top to bottom, for each shape of ink
    if stacked:
        plan = [[(name, full)] for name in (("kl", "departure", "dims", "bars", "heatmap") if latent else ("kl", "bars"))]
    elif not latent:
        plan = [[("kl", full if wide else left)], [("bars", full)]]
    elif wide:
        plan = [[("kl", full)], [("departure", left), ("dims", right)], [("bars", full)], [("heatmap", full)]]
    else:
        plan = [[("kl", left), ("departure", right)], [("bars", left), ("dims", right)], [("heatmap", full)]]
    gutter = min(0.25, 5.0 * fs / width_px)
    axis, bands = 0, []
    for row_px, row in zip(rows, plan):
        yd = band(row_px)
        bands.append(yd)
        for name, xd in row:
            build, title, caption, n_axes = builders[name]
            px, shift = (full_px, 0.0) if xd is full else (half_px, 0.04 if xd is right else 0.0)
            if name in LABELLED and xd[0] < gutter:  # room on the left for "z12 · 0.35" and the axis title
                xd, shift = (xd[0] + gutter, xd[1]), gutter
            add(build(axis, xd, yd), title, caption, (xd[0], xd[1]), yd, px, shift)
            axis += n_axes
    if stacked:
        legend_at = (full[1], bands[1][1]) if latent else (1.0, bands[0][1])
    elif wide:
        legend_at = (left[1], bands[1][1]) if latent else (1.0, bands[0][1])
    else:
        legend_at = (right[1], bands[0][1])

    data, layout, notes, cursor_slots = [], {}, [], []
    for p in panels:
        offset = len(data)
        data.extend(p.data)
        layout.update(p.layout)
        notes.extend(p.notes)
        cursor_slots.append([offset + i for i in p.cursor_index])
    layout["annotations"] = notes
    if not animated:
        keep = [i for i in range(len(data)) if i not in set(i for slots in cursor_slots for i in slots)]
        spec = _player_spec(data, panels, cursor_slots, T)
        layout["legend"] = dict(orientation="v", x=legend_at[0], xanchor="right", y=legend_at[1], yanchor="top",
                                bgcolor="rgba(255,255,255,0.85)", font=dict(size=fs - 2))
        fig = _figure([data[i] for i in keep], layout, style, None, height=height, legend=latent)
        # Fixed outer margins instead of plotly's automargin: automargin measures the tick
        # labels and draws the whole figure a second time, about 100 ms of browser time on
        # every pen-up (the exported, animated figure keeps it).
        fig.update_xaxes(automargin=False)
        fig.update_yaxes(automargin=False)
        fs = style.font_size
        fig.update_layout(margin=dict(l=int(3.6 * fs), r=10, t=8, b=int(2.6 * fs)), hovermode="closest")
        return fig, spec
    frame_steps = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    cursor_traces = [i for slots in cursor_slots for i in slots]
    frames = []
    for s in frame_steps:
        fd = [d for p in panels for d in p.cursor(int(s))]
        frames.append(dict(name=str(int(s)), data=fd, traces=cursor_traces))
    frame_ms = int(round(1000 / fps))
    still = {"frame": {"duration": 0, "redraw": False}, "transition": {"duration": 0}, "mode": "immediate"}
    anim = {"frame": {"duration": frame_ms, "redraw": False}, "transition": {"duration": 0}, "mode": "immediate"}
    play = dict(label="▶ Play", method="animate", args=[None, dict(anim, fromcurrent=True)])
    pause = dict(label="❚❚ Pause", method="animate", args=[[None], still])
    restart = dict(label="⟲ From the start", method="animate", args=[[str(int(s)) for s in frame_steps], anim])
    label_every = max(1, int(np.ceil(len(frame_steps) / 12)))
    slider_y = 1.0 - fs * 1.0 / height
    layout["sliders"] = [dict(
        active=int(np.searchsorted(frame_steps, s0)), x=0.30, len=0.65, y=slider_y, yanchor="top", pad=dict(t=0, b=0),
        currentvalue=dict(prefix="time step ", font=dict(size=fs + 1, color=CURSOR_COLOR), xanchor="left"),
        ticklen=3, minorticklen=0, font=dict(size=fs - 2),
        steps=[dict(method="animate", label=str(int(s)) if i % label_every == 0 else "", value=str(int(s)),
                    args=[[str(int(s))], still]) for i, s in enumerate(frame_steps)])]
    layout["updatemenus"] = [dict(type="buttons", direction="left", x=0.0, y=slider_y, xanchor="left", yanchor="top",
                                  pad=dict(t=fs * 1.8, r=4), showactive=False, buttons=[play, pause, restart],
                                  font=dict(size=fs))]
    layout["legend"] = dict(orientation="v", x=legend_at[0], xanchor="right", y=legend_at[1], yanchor="top",
                            bgcolor="rgba(255,255,255,0.85)", font=dict(size=fs - 2))
    fig = _figure(data, layout, style, None, height=height, legend=latent, frames=frames)
    fig.update_layout(margin=dict(l=10, r=10, t=8, b=8), hovermode="closest")
    return fig
