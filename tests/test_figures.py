"""Pure figure builders of the app, on synthetic numpy data shaped like a ``vrnn.Trace``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest

from vrnn import Ink
from vrnn.app import figures
from vrnn.app.figures import Style


def zigzag_ink(n_strokes: int = 3, points: int = 25, seed: int = 0) -> Ink:
    rng = np.random.default_rng(seed)
    strokes = []
    for k in range(n_strokes):
        x = 40 * k + np.linspace(0, 30, points)
        y = 50 + 20 * np.sin(np.linspace(0, 3 * np.pi, points)) + rng.normal(0, 0.5, points)
        strokes.append(np.column_stack([x, y]))
    return Ink(strokes=strokes)


def fake_trace(T: int = 60, Z: int = 5, seed: int = 0) -> SimpleNamespace:
    """The numpy fields of a ``vrnn.Trace``, with structure a test can check against."""
    rng = np.random.default_rng(seed)
    ink = zigzag_ink(3, T // 3, seed)
    pts = ink.points[:T]
    off = ink.to_offsets()[:T]
    t = np.arange(T)[:, None]
    post_mu = np.concatenate([np.sin(t / 5.0) * 2.0, np.cos(t / 7.0), rng.normal(0, 0.05, (T, Z - 2))], axis=1)
    kl_dims = np.abs(rng.normal(0, 0.1, (T, Z)))
    kl_dims[:, 0] += 1.0  # unit 0 is the active one
    return SimpleNamespace(
        ink=ink, offsets=off, points=pts, pen=off[:, 2].copy(),
        prior_mu=post_mu * 0.5, prior_sigma=np.full((T, Z), 0.8), post_mu=post_mu,
        post_sigma=np.full((T, Z), 0.3), z=post_mu, kl=kl_dims.sum(1), kl_dims=kl_dims,
        nll=np.abs(rng.normal(1.0, 0.3, T)), steps=T)


def rnn_trace(T: int = 40) -> SimpleNamespace:
    tr = fake_trace(T, Z=3)
    empty = np.zeros((T, 0))
    for name in ("prior_mu", "prior_sigma", "post_mu", "post_sigma", "z", "kl_dims"):
        setattr(tr, name, empty)
    tr.kl = np.zeros(T)
    return tr


def payload_bytes(fig: go.Figure) -> int:
    return len(fig.to_json())


def shapes_at(fig: go.Figure) -> list[float]:
    return [s.x0 for s in fig.layout.shapes]


# ----------------------------------------------------------------- ink and continuations
def test_ink_figure_draws_strokes_with_gaps_and_y_down():
    ink = zigzag_ink(3, 10)
    fig = figures.ink_figure([ink])
    xs = fig.data[0].x
    assert sum(v is None for v in xs) == 2  # three strokes: two pen lifts
    assert len(xs) == 30 + 2
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.yaxis.scaleanchor == "x"


def test_ink_figure_empty_ink_says_so():
    fig = figures.ink_figure([Ink(strokes=[])])
    assert not fig.data and "No ink" in fig.layout.annotations[0].text


def test_continuations_overlay_colours_each_continuation():
    prefix = zigzag_ink(2, 10)
    conts = [Ink.from_offsets(np.tile([[3.0, 1.0, 0.0]], (20, 1)), start=tuple(prefix.end_point())) for _ in range(3)]
    fig = figures.continuations_figure(prefix, conts)
    line_colors = [tr.line.color for tr in fig.data if tr.mode == "lines"]
    assert line_colors[0] == figures.INK_COLOR
    assert line_colors[1:] == [figures.color_for(i) for i in range(3)]
    assert len(set(line_colors)) == 4


def test_continuations_grid_gives_one_panel_each():
    prefix = zigzag_ink(1, 10)
    conts = [Ink.from_offsets(np.tile([[1.0, 0.5, 0.0]], (10, 1)), start=(30, 50)) for _ in range(5)]
    fig = figures.continuations_figure(prefix, conts, layout="grid")
    assert len(fig.layout.annotations) == 5  # panel titles #1..#5
    axes = {tr.xaxis for tr in fig.data}
    assert len(axes) == 5


def test_coordinates_are_rounded_for_small_payloads():
    ink = Ink(strokes=[np.random.default_rng(0).uniform(0, 500, (200, 2))])
    fig = figures.ink_figure([ink])
    assert all(v is None or round(v, 1) == v for v in fig.data[0].x)


# ----------------------------------------------------------------- replay
def replay_visibility(fig: go.Figure) -> list[list[bool]]:
    """Chunk visibility after each frame, applying frames in order as plotly.js does."""
    n_chunks = len(fig.data) - 1
    state = [tr.visible is not False for tr in fig.data[:n_chunks]]  # unset means visible
    out = []
    for fr in fig.frames:
        for idx, d in zip(fr.traces, fr.data):
            if idx < n_chunks:
                state[idx] = bool(d.visible)
        out.append(list(state))
    return out


def test_replay_frames_reveal_chunks_in_order_and_end_fully_drawn():
    prefix = zigzag_ink(2, 20)
    conts = [Ink.from_offsets(np.tile([[2.0, 0.0, 0.0]], (30, 1)), start=tuple(prefix.end_point())) for _ in range(2)]
    fig = figures.replay_figure(prefix, conts, prefix_frames=5, continuation_frames=6)
    assert len(fig.frames) == 11
    vis = replay_visibility(fig)
    assert sum(vis[0]) == 1 and all(vis[-1])
    counts = [sum(v) for v in vis]
    assert counts == sorted(counts) and len(set(counts)) == 11  # something new every frame
    # the static picture (no animation running) shows everything
    assert all(tr.visible is not False for tr in fig.data[:-1])
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    # the pen tip follows the prefix, then one tip per continuation
    assert len(fig.frames[0].data[-1].x) == 1 and len(fig.frames[-1].data[-1].x) == 2


def test_replay_chunks_cover_every_point_once_plus_joins():
    strokes = [np.arange(20.0).reshape(10, 2), np.arange(14.0).reshape(7, 2) + 100]
    chunks = figures._chunks(strokes, 4)
    assert len(chunks) == 4
    joined = {tuple(p) for chunk in chunks for piece in chunk for p in piece}
    assert joined == {tuple(p) for s in strokes for p in s}


def test_replay_payload_grows_with_points_not_frames_times_points():
    prefix = zigzag_ink(3, 200)
    conts = [Ink.from_offsets(np.tile([[1.0, 0.2, 0.0]], (400, 1)), start=(0, 0)) for _ in range(4)]
    few = payload_bytes(figures.replay_figure(prefix, conts, prefix_frames=5, continuation_frames=5))
    many = payload_bytes(figures.replay_figure(prefix, conts, prefix_frames=20, continuation_frames=30))
    # 5x the frames costs far less than 5x the bytes: frames carry visibility flags, not points
    assert many < 2 * few


# ----------------------------------------------------------------- surprise
def test_kl_ink_colours_points_by_kl_and_marks_the_step():
    tr = fake_trace()
    fig = figures.kl_ink_figure(tr, step=7)
    markers = fig.data[1]
    np.testing.assert_allclose(markers.marker.color, np.round(tr.kl, 3))
    cursor = fig.data[-1]
    assert cursor.x[0] == pytest.approx(tr.points[7, 0], abs=0.06)  # rounded to 4 digits of the extent
    assert cursor.y[0] == pytest.approx(tr.points[7, 1], abs=0.06)


def test_step_bars_have_kl_and_nll_and_one_cursor_per_panel():
    tr = fake_trace(T=50)
    fig = figures.step_bars_figure(tr, step=12)
    bars = [d for d in fig.data if isinstance(d, go.Bar)]
    assert len(bars) == 2
    np.testing.assert_allclose(bars[0].y, np.round(tr.kl, 3))
    np.testing.assert_allclose(bars[1].y, np.round(tr.nll, 3))
    assert shapes_at(fig) == [12, 12]


def test_long_inks_get_step_outlines_instead_of_bars():
    tr = fake_trace(T=300)
    fig = figures.step_bars_figure(tr, step=5, max_bars=200)
    outlines = [d for d in fig.data if d.type == "scatter" and d.fill == "tozeroy"]
    assert len(outlines) == 2 and not [d for d in fig.data if d.type == "bar"]
    np.testing.assert_allclose(outlines[0].y, np.round(tr.kl, 3))
    assert outlines[0].line.shape == "hvh"


def test_step_is_clipped_into_range():
    tr = fake_trace(T=30)
    assert shapes_at(figures.step_bars_figure(tr, step=999)) == [29, 29]
    assert shapes_at(figures.step_bars_figure(tr, step=None)) == []


# ----------------------------------------------------------------- latent dynamics
def test_pca_finds_the_dominant_direction_with_a_stable_sign():
    rng = np.random.default_rng(1)
    X = np.zeros((200, 4))
    X[:, 2] = rng.normal(0, 5, 200)
    X[:, 0] = rng.normal(0, 1, 200)
    _, W, ratio = figures.pca_projection(X)
    assert W.shape == (4, 2)
    assert abs(W[2, 0]) == pytest.approx(1.0, abs=1e-3) and W[2, 0] > 0
    assert ratio[0] > ratio[1] > 0
    _, W2, _ = figures.pca_projection(-X)
    np.testing.assert_allclose(W2, W, atol=1e-9)


def test_pca_of_one_latent_dimension_pads_with_zeros():
    _, W, _ = figures.pca_projection(np.arange(10.0)[:, None])
    assert W.shape == (1, 2) and W[0, 1] == 0


def test_latent_pca_figure_shows_prior_and_posterior_paths_and_cursor():
    tr = fake_trace()
    fig = figures.latent_pca_figure(tr, step=5)
    names = [d.name for d in fig.data if d.name]
    assert any(n.startswith("prior") for n in names) and any(n.startswith("posterior") for n in names)
    mean, W, _ = figures.pca_projection(tr.post_mu[1:])  # the start step stays out of the projection
    post = (tr.post_mu - mean) @ W
    cursor = fig.data[-1]
    assert cursor.x[1] == pytest.approx(post[5, 0]) and cursor.y[1] == pytest.approx(post[5, 1])
    paths = [d for d in fig.data if d.name and d.fill != "toself"]
    assert all(len(d.x) == tr.steps - 1 and d.customdata[0] == 1 for d in paths)
    # uncertainty ellipses are filled shapes
    assert sum(d.fill == "toself" for d in fig.data) == 2


def test_projected_ellipse_matches_sigma_along_a_principal_axis():
    W = np.eye(3)[:, :2]
    xs, ys = figures._ellipses(np.zeros((1, 2)), np.array([[2.0, 0.5, 9.0]]), W, every=1)
    x = np.array([v for v in xs if v is not None])
    y = np.array([v for v in ys if v is not None])
    assert np.abs(x).max() == pytest.approx(2.0, rel=0.02)
    assert np.abs(y).max() == pytest.approx(0.5, rel=0.02)


def test_latent_dims_figure_picks_the_most_active_units():
    tr = fake_trace(Z=10)
    tr.kl_dims[:, 7] += 5.0
    fig = figures.latent_dims_figure(tr, step=3, max_dims=2)
    titles = [fig.layout[f"yaxis{i if i > 1 else ''}"].title.text for i in (1, 2)]
    assert titles == ["z1", "z8"]
    assert shapes_at(fig) == [3, 3]


def test_active_dims_orders_by_mean_kl():
    kl = np.array([[0.1, 3.0, 0.0, 1.0]] * 5)
    assert figures.active_dims(kl, 2).tolist() == [1, 3]


def test_kl_heatmap_is_dimension_by_time():
    tr = fake_trace(T=40, Z=6)
    fig = figures.kl_heatmap_figure(tr, step=9)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (6, 40)
    np.testing.assert_allclose(z, np.round(tr.kl_dims.T, 3))
    assert shapes_at(fig) == [9]


@pytest.mark.parametrize("builder", [figures.latent_pca_figure, figures.latent_dims_figure, figures.kl_heatmap_figure])
def test_latent_views_explain_a_model_without_latents(builder):
    fig = builder(rnn_trace(), step=3)
    assert not fig.data
    assert "no latent" in fig.layout.annotations[0].text


def test_every_trace_view_stays_small_for_a_long_ink():
    tr = fake_trace(T=900, Z=16)
    total = sum(payload_bytes(b(tr, step=100)) for b in (
        figures.kl_ink_figure, figures.step_bars_figure, figures.latent_pca_figure,
        figures.latent_dims_figure, figures.kl_heatmap_figure))
    assert total < 1_000_000


# ----------------------------------------------------------------- samples, training, comparison, style
def test_samples_figure_one_panel_per_sample():
    inks = [zigzag_ink(1, 10, seed=i) for i in range(4)]
    fig = figures.samples_figure(inks, cols=2)
    assert len({d.xaxis for d in fig.data}) == 4


def test_training_curves_from_progress_dicts_skip_missing_values():
    hist = [{"step": s, "loss": 2.0 / (s + 1), "kl": 0.1, "nll": 1.9, "valid_elbo": None} for s in range(0, 50, 5)]
    hist.append({"step": 50, "valid_elbo": -1.5, "loss": None})
    fig = figures.training_curves_figure(hist)
    by_name = {d.name: d for d in fig.data}
    assert len(by_name["training ELBO"].x) == 10
    assert by_name["training ELBO"].y[0] == -2.0  # the loss is the negative ELBO
    assert list(by_name["validation ELBO"].x) == [50]
    assert by_name["KL"].xaxis == "x2" and by_name["training ELBO"].xaxis == "x"
    assert "Waiting" in figures.training_curves_figure([]).layout.annotations[0].text


def test_comparison_groups_measures_by_model():
    rows = [{"model": "VRNN", "measure": "ELBO", "value": -1.2}, {"model": "VRNN", "measure": "IWAE", "value": -1.1},
            {"model": "RNN", "measure": "exact log-likelihood", "value": -1.3}]
    fig = figures.comparison_figure(rows)
    assert [d.name for d in fig.data] == ["ELBO", "IWAE", "exact log-likelihood"]
    assert list(fig.data[2].x) == ["RNN"]


def test_per_step_comparison_has_one_line_per_model():
    fig = figures.per_step_comparison_figure({"a": np.ones(10), "b": np.zeros(10)}, step=4)
    assert len(fig.data) == 2 and shapes_at(fig) == [4]


def test_presentation_style_is_bigger_everywhere():
    tr = fake_trace()
    normal = figures.kl_ink_figure(tr, style=Style())
    big = figures.kl_ink_figure(tr, style=Style.presentation())
    assert big.layout.font.size > normal.layout.font.size
    assert big.data[0].line.width > normal.data[0].line.width
    assert big.data[1].marker.size > normal.data[1].marker.size


def test_figures_serialize_to_json():
    tr = fake_trace()
    for fig in (figures.kl_ink_figure(tr, 3), figures.latent_pca_figure(tr, 3), figures.kl_heatmap_figure(tr, 3)):
        json.loads(fig.to_json())  # no numpy scalars or NaN that plotly.js cannot read


def test_latent_dims_subsample_long_inks_but_keep_the_cursor_exact():
    tr = fake_trace(T=900, Z=3)
    fig = figures.latent_dims_figure(tr, step=451, max_points=300)
    lines = [d for d in fig.data if d.mode == "lines" and d.fill != "toself"]  # mean lines, not bands
    assert all(len(d.x) <= 300 for d in lines)
    assert lines[0].x[-1] >= 890  # still spans the whole ink
    assert shapes_at(fig) == [451, 451, 451]
