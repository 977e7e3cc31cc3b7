"""Pure figure builders of the app (figures, trace_views), on synthetic numpy data shaped like a ``vrnn.Trace``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest

from vrnn import Ink
from vrnn.app import figures, trace_views
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
    ink = zigzag_ink(3, T // 3 + 1, seed)  # at least T points: one per step
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


def straight(n: int, start, step=(3.0, 0.0)) -> Ink:
    return Ink.from_offsets(np.tile([[step[0], step[1], 0.0]], (n, 1)), start=tuple(start))


def test_continuation_rows_one_row_each_at_one_scale_with_the_prefix_end():
    prefix = zigzag_ink(2, 10)
    conts = [straight(20, prefix.end_point()) for _ in range(3)]
    fig = figures.continuations_figure(prefix, conts)
    axes = {tr.xaxis for tr in fig.data}
    assert len(axes) == 3  # one row (pair of axes) per continuation
    ranges = {tuple(fig.layout[f"xaxis{i if i > 1 else ''}"].range) for i in (1, 2, 3)}
    assert len(ranges) == 1  # same view, same scale in every row
    colors = [tr.line.color for tr in fig.data if tr.mode == "lines"]
    assert colors.count(figures.INK_COLOR) == 3  # the prefix's end repeated in each row
    assert [c for c in colors if c != figures.INK_COLOR] == [figures.color_for(i) for i in range(3)]
    assert [a.text for a in fig.layout.annotations] == ["<b>#1</b>", "<b>#2</b>", "<b>#3</b>"]


def test_overlay_layout_draws_everything_in_one_view():
    prefix = zigzag_ink(2, 10)
    fig = figures.continuations_figure(prefix, [straight(20, prefix.end_point()) for _ in range(3)], layout="overlay")
    assert {tr.xaxis or "x" for tr in fig.data} == {"x"}
    assert [tr.name for tr in fig.data if tr.name] == ["your ink", "#1", "#2", "#3"]


def test_a_stray_far_stroke_does_not_stretch_the_view():
    prefix = zigzag_ink(2, 20)
    scale = figures.ink_scale(prefix.points)
    good = straight(30, prefix.end_point(), (0.3 * scale, 0.0))
    stray = Ink(strokes=[*good.strokes, np.array([[prefix.end_point()[0] + 500 * scale, 0.0],
                                                  [prefix.end_point()[0] + 501 * scale, 5.0]])])
    _, xr, yr = figures.continuation_view(prefix, [good, good, good, stray])
    assert xr[1] - xr[0] < 25 * scale and yr[1] - yr[0] < 8 * scale


def test_long_prefix_shows_only_its_end_at_its_own_scale():
    long = zigzag_ink(30, 20)  # 30 strokes side by side: a long line
    scale = figures.ink_scale(long.points)
    tail, xr, _ = figures.continuation_view(long, [straight(10, long.end_point())], context=7.0)
    tail_pts = np.concatenate(tail)
    assert np.ptp(tail_pts[:, 0]) <= 7.0 * scale + 1e-9
    np.testing.assert_allclose(tail_pts[-1], long.end_point())
    assert xr[1] - xr[0] < 0.5 * np.ptp(long.points[:, 0])


def test_natural_end_keeps_whole_words_and_cuts_new_lines_and_far_strokes():
    scale = 10.0
    a = np.column_stack([np.linspace(0, 10, 6), np.zeros(6)])
    word = lambda dx: [a + [dx, 0], a + [dx + 12, 0]]  # noqa: E731  two letters, a small gap
    # two words and the start of a third: the half word after the last break goes
    ink = Ink(strokes=[*word(0), *word(40), a + [80, 0]])
    assert len(figures.natural_end(ink, scale).strokes) == 4
    # a new line (back to the left) ends it, whatever follows
    line = Ink(strokes=[*word(0), *word(40), a + [-5, 25], *word(30)])
    assert len(figures.natural_end(line, scale).strokes) == 4
    # a stray stroke far away ends it at once
    stray = Ink(strokes=[*word(0), a + [200, 0], *word(240)])
    assert len(figures.natural_end(stray, scale).strokes) == 2
    # the jump away from the prefix before anything is written does not count
    lead = Ink(strokes=[a[:2], a + [80, 0], a + [170, 0]])
    assert len(figures.natural_end(lead, scale).strokes) == 2
    # no word break: kept whole
    assert figures.natural_end(Ink(strokes=word(0)), scale).num_points == 12
    # a delayed stroke (a dot back over the word, no drop) is no new line: the next word stays
    dot = np.array([[3.0, -8.0], [3.5, -8.0]])
    dotted = Ink(strokes=[*word(0), dot, *word(40), a + [80, 0]])
    assert len(figures.natural_end(dotted, scale).strokes) == 5
    # print: from one letter's foot up to the next one's top is a long jump but no white space
    stem = np.column_stack([np.zeros(6), np.linspace(0, -10, 6)])
    printed = Ink(strokes=[stem + [0, 0], stem[::-1] + [4, 0], stem + [8, 0], stem[::-1] + [12, 0]])
    assert figures.natural_end(printed, scale).num_points == 24
    # after_x: a t-bar over the prefix (left of its right edge) finishes the prefix; the space
    # on to the next word is no break, so the word is kept, and the space after it is
    bar = np.column_stack([np.linspace(-8, -2, 6), np.full(6, -8.0)])
    tbar = Ink(strokes=[bar, *word(30), a + [70, 0]])
    assert len(figures.natural_end(tbar, scale, after_x=0.0).strokes) == 3
    assert len(figures.natural_end(tbar, scale).strokes) == 1  # counted as ink: a stray bar, then far away


def test_auto_length_gives_a_short_prefix_room_for_words():
    from vrnn.app.panels import auto_steps

    assert auto_steps(20) == auto_steps(52) == 120  # a letter, "the"
    assert auto_steps(240) == 180 and auto_steps(2000) == 300


def test_coordinates_are_rounded_for_small_payloads():
    ink = Ink(strokes=[np.random.default_rng(0).uniform(0, 500, (200, 2))])
    fig = figures.ink_figure([ink])
    assert all(v is None or round(v, 1) == v for v in fig.data[0].x)


# ----------------------------------------------------------------- replay
def replay_state(fig) -> list[list[int]]:
    """Points drawn per trace after each frame, applying frames in order as plotly.js does."""
    n = len(fig.data) - 1
    state = [sum(v is not None for v in (tr.x or ())) for tr in fig.data[:n]]
    out = []
    for fr in fig.raw_frames:
        for idx, d in zip(fr["traces"], fr["data"]):
            if idx < n:
                state[idx] = sum(v is not None for v in d["x"])
        out.append(list(state))
    return out


def timed_ink(seconds: float, n: int = 50) -> Ink:
    x = np.linspace(0, 100, n)
    return Ink(strokes=[np.column_stack([x, 10 * np.sin(x / 10)])], times=[np.linspace(0, seconds, n)])


def test_replay_runs_at_the_pens_real_speed_and_a_speed_control():
    prefix = timed_ink(4.0)
    cont = [straight(30, prefix.end_point(), (2.0, 0.0))]
    one = figures.replay_figure(prefix, cont, speed=1.0)
    two = figures.replay_figure(prefix, cont, speed=2.0)
    assert one.layout.meta["replay_seconds"] > 4.0  # the prefix alone took 4 s to write
    assert two.layout.meta["replay_seconds"] == pytest.approx(one.layout.meta["replay_seconds"] / 2, rel=0.02)
    duration = one.layout.updatemenus[0].buttons[0].args[1]["frame"]["duration"]
    assert duration * (len(one.raw_frames) - 1) / 1000 == pytest.approx(one.layout.meta["replay_seconds"], rel=0.05)
    assert one.layout.updatemenus[0].buttons[0].args[1]["frame"]["redraw"] is False


def test_replay_frames_grow_the_ink_and_end_fully_drawn():
    prefix = timed_ink(2.0)
    conts = [straight(30, prefix.end_point()) for _ in range(2)]
    fig = figures.replay_figure(prefix, conts)
    static = [sum(v is not None for v in tr.x) for tr in fig.data[:-1]]
    states = replay_state(fig)
    assert max(states[0]) <= 2  # frame 0: nothing drawn yet (at most a point per trace)
    assert states[-1] == static  # the last frame is the complete drawing, as shown before playing
    totals = [sum(s) for s in states]
    assert totals == sorted(totals)
    fig.validated()  # the unvalidated frames are valid plotly


def test_replay_without_times_uses_a_steady_pen():
    ink = zigzag_ink(2, 30)
    fig = figures.replay_figure(ink, [])
    scale = figures.ink_scale(ink.points)
    length = sum(np.linalg.norm(np.diff(s, axis=0), axis=1).sum() for s in ink.strokes)
    expected = length / (figures.DEFAULT_PEN_SPEED * scale)
    assert fig.layout.meta["replay_seconds"] == pytest.approx(expected, rel=0.5)


def test_replay_payload_grows_with_points_not_frames_times_points():
    prefix = timed_ink(3.0, 600)
    conts = [straight(400, prefix.end_point(), (1.0, 0.2)) for _ in range(4)]
    slow = payload_bytes(figures.replay_figure(prefix, conts, speed=0.25))  # 4x the frames
    fast = payload_bytes(figures.replay_figure(prefix, conts, speed=1.0))
    assert slow < 2.5 * fast


# ----------------------------------------------------------------- surprise
def test_kl_ink_colours_points_by_kl_and_marks_the_step():
    tr = fake_trace()
    fig = trace_views.kl_ink_figure(tr, step=7)
    markers = fig.data[1]
    np.testing.assert_allclose(markers.marker.color, np.round(tr.kl, 3))
    cursor = fig.data[2]
    assert cursor.x[0] == pytest.approx(tr.points[7, 0], abs=0.06)
    assert cursor.y[0] == pytest.approx(tr.points[7, 1], abs=0.06)


def cursor_xs(fig) -> list[float]:
    return [d.x[0] for d in fig.data if d.meta == "time cursor"]


def test_step_bars_have_explicit_colours_and_step_0_sets_no_range():
    tr = fake_trace(T=50)
    tr.kl[0] = 500.0  # the start step: far above everything else
    fig = trace_views.step_bars_figure(tr, step=12, max_bars=200)
    bars = [d for d in fig.data if isinstance(d, go.Bar)]
    assert len(bars) == 2
    np.testing.assert_allclose(bars[0].y, np.round(tr.kl, 3))
    assert all(isinstance(c, str) and c.startswith("#") and len(c) == 7 for c in bars[0].marker.color)
    assert fig.layout.yaxis.range[1] < 10  # not stretched by step 0
    assert cursor_xs(fig) == [12, 12]


def test_scale_color_interpolates_hex_stops():
    scale = [[0.0, "#000000"], [1.0, "#ffffff"]]
    assert figures.scale_color(scale, 0.5) == "#808080"
    assert figures.scale_color(scale, 7) == "#ffffff" and figures.scale_color(scale, float("nan")) == "#000000"


def test_long_inks_get_step_outlines_instead_of_bars():
    tr = fake_trace(T=300)
    fig = trace_views.step_bars_figure(tr, step=5)
    outlines = [d for d in fig.data if d.type == "scatter" and d.fill == "tozeroy"]
    assert len(outlines) == 2 and not [d for d in fig.data if d.type == "bar"]
    assert outlines[0].line.shape == "hvh"


# ----------------------------------------------------------------- latent dynamics
def test_whitened_departure_puts_the_prior_at_the_origin():
    tr = fake_trace(T=30, Z=4)
    dep, ratio = trace_views.whitened_departure(tr)
    np.testing.assert_allclose(dep, (tr.post_mu - tr.prior_mu) / tr.prior_sigma)
    np.testing.assert_allclose(ratio, tr.post_sigma / tr.prior_sigma)


def test_departure_view_names_the_two_top_kl_dims_and_leaves_step_0_out():
    tr = fake_trace(T=60, Z=5)
    tr.kl_dims[:, 3] += 2.0  # now z4 carries the most KL, then z1
    tr.post_mu[0] = 1e3  # a wild start step must not set the axes
    fig = trace_views.latent_departure_figure(tr, step=5)
    assert fig.layout.xaxis.title.text.startswith("z4:") and fig.layout.yaxis.title.text.startswith("z1 ")
    assert "(μq − μp)/σp" in fig.layout.xaxis.title.text
    assert max(abs(v) for v in fig.layout.xaxis.range) < 100
    posterior = [d for d in fig.data if d.name and d.name.startswith("posterior")][0]
    assert 0 not in list(posterior.customdata)
    assert any(d.name == "pen lift" for d in fig.data)


def test_departure_view_says_when_the_latent_is_nearly_unused():
    tr = fake_trace(T=40, Z=3)
    tr.kl_dims[:] = 1e-4
    tr.kl = tr.kl_dims.sum(1)
    tr.post_mu, tr.post_sigma = tr.prior_mu.copy(), tr.prior_sigma.copy()
    fig = trace_views.latent_departure_figure(tr, step=3)
    assert any("nearly unused" in a.text for a in fig.layout.annotations)
    assert fig.layout.xaxis.range[0] <= -1 and fig.layout.xaxis.range[1] >= 1  # the unit circle stays in view


def test_latent_dims_are_sorted_by_kl_named_and_scaled_without_step_0():
    tr = fake_trace(Z=10)
    tr.kl_dims[:, 7] += 5.0
    tr.prior_mu[0] = 40.0  # a wild start step
    fig = trace_views.latent_dims_figure(tr, step=3, max_dims=2)
    assert [t.split(" ·")[0] for t in fig.layout.yaxis.ticktext] == ["z8", "z1"]  # most KL on top
    assert list(fig.layout.yaxis.tickvals) == [1.5, 0.5]
    means = [d for d in fig.data if d.customdata is not None]
    assert len(means) == 4  # prior and posterior of each dimension
    for d in means:  # each in its own band
        ys = np.asarray(d.y, dtype=float)
        assert ys.min() >= 0 and ys.max() <= 2
    z1_prior = np.asarray(means[2].y[1:], dtype=float)  # z1 (a sine wave): step 0 does not flatten it
    assert np.ptp(z1_prior) > 0.2 and z1_prior.min() >= 0 and z1_prior.max() <= 1
    assert trace_views.shown_dims(tr, 2) == [7, 0]
    assert cursor_xs(fig) == [3]


def test_kl_heatmap_scales_each_unit_to_its_peak_and_sorts_units():
    tr = fake_trace(T=40, Z=6)
    tr.kl_dims[:, 4] *= 0.01  # a quiet unit with one burst
    tr.kl_dims[20, 4] = 0.5
    fig = trace_views.kl_heatmap_figure(tr, step=9)
    z = np.array(fig.data[0].z, dtype=float)
    assert z.shape == (6, 40)
    assert np.all(np.isnan(z[:, 0]))  # step 0 sets nothing
    assert fig.data[0].y[0].startswith("z1 ")  # the busiest unit first
    quiet = [i for i, label in enumerate(fig.data[0].y) if label.startswith("z5 ")][0]
    assert np.nanmax(z[quiet]) == pytest.approx(1.0) and np.nanargmax(z[quiet]) == 20
    assert cursor_xs(fig) == [9]


@pytest.mark.parametrize("builder", [trace_views.latent_departure_figure, trace_views.latent_dims_figure,
                                     trace_views.kl_heatmap_figure])
def test_latent_views_explain_a_model_without_latents(builder):
    fig = builder(rnn_trace(), step=3)
    assert not fig.data
    assert "no latent" in fig.layout.annotations[0].text


def test_linked_views_have_captions_and_a_player_spec_for_every_cursor():
    tr = fake_trace(T=50, Z=8)
    fig, spec = trace_views.trace_views(tr)
    texts = " ".join(a.text for a in fig.layout.annotations)
    for caption in trace_views.CAPTIONS.values():
        assert caption.split()[0] in texts
    assert not fig.layout.sliders and not [d for d in fig.data if d.meta == "time cursor"]
    assert spec["steps"] == 50 and len(spec["readout"]) == 50 and spec["steps_per_s"] >= 20
    axes = {k for k in fig.to_dict()["layout"] if k.startswith(("xaxis", "yaxis"))}
    for c in spec["cursors"]:
        assert c["xaxis"] in axes and c["yaxis"] in axes
        if c["mode"] != "vline":
            assert len(c["x"]) == 50 and len(c["y"]) == 50
    vlines = [c for c in spec["cursors"] if c["mode"] == "vline"]
    assert len(vlines) == 2 + 1 + 1  # KL, NLL, the dims panel, heatmap


def test_animated_linked_views_play_with_frames_that_move_only_cursors():
    tr = fake_trace(T=30, Z=3)
    fig = trace_views.trace_views_figure(tr, max_frames=10)
    assert len(fig.raw_frames) == 10 and fig.layout.sliders[0].steps[0].method == "animate"
    moved = set(fig.raw_frames[0]["traces"])
    assert all(fig.data[i].hoverinfo == "skip" for i in moved)
    fig.validated()


@pytest.mark.parametrize("latent", [True, False])
def test_linked_views_stack_one_panel_per_row_on_a_narrow_page(latent):
    tr = fake_trace(T=50, Z=8) if latent else rnn_trace()

    def x_domains(width_px):
        fig, _ = trace_views.trace_views(tr, width_px=width_px)
        lay = fig.to_dict()["layout"]
        return fig, sorted({tuple(lay[k]["domain"]) for k in lay if k.startswith("xaxis")})

    wide_fig, wide = x_domains(1000)
    narrow_fig, narrow = x_domains(500)
    if latent:
        assert len(wide) > 1  # two columns side by side
        assert narrow_fig.layout.height > wide_fig.layout.height  # the rows go down, not across
    # stacked: every panel ends at the same right edge (one column), labelled ones start after a gutter
    assert len({d[1] for d in narrow}) == 1 and all(d[0] < 0.3 for d in narrow)
    # headings stay on the page and start at the column's left edge
    xs = [a.x for a in narrow_fig.layout.annotations if a.text and a.text.startswith("<b>")]
    assert xs and min(xs) >= 0.0 and max(xs) < 0.05


def test_unit_labelled_panels_leave_room_for_their_labels():
    fig, _ = trace_views.trace_views(fake_trace(T=50, Z=16), width_px=1000)
    lay = fig.to_dict()["layout"]
    heat = next(d for d in fig.data if d.type == "heatmap")
    domain = lay["xaxis" + heat.xaxis[1:]]["domain"]
    assert domain[0] >= 5.0 * figures.DEFAULT_STYLE.font_size / 1000 - 1e-9  # "z12 · 0.35" and the axis title fit


def test_viewport_width_is_clamped_and_defaults_before_the_browser_answers():
    from vrnn.app.viewport import DEFAULT_WIDTH, clamp_width

    assert clamp_width(None) == clamp_width("wide") == clamp_width(float("nan")) == clamp_width(0) == DEFAULT_WIDTH
    assert clamp_width(640.4) == 640 and clamp_width(10) == 320 and clamp_width(1e6) == 2400


def test_linked_views_work_without_latents():
    fig, spec = trace_views.trace_views(rnn_trace())
    assert fig.data and spec["steps"] == 40
    assert not any(d.type == "heatmap" for d in fig.data)


def test_every_trace_view_stays_small_for_a_long_ink():
    tr = fake_trace(T=900, Z=16)
    fig, spec = trace_views.trace_views(tr)
    assert payload_bytes(fig) + len(json.dumps(spec)) < 1_200_000


# ----------------------------------------------------------------- samples, training, comparison, style
def test_samples_figure_one_panel_per_sample():
    inks = [zigzag_ink(1, 10, seed=i) for i in range(4)]
    fig = figures.samples_figure(inks, cols=2)
    assert len({d.xaxis for d in fig.data}) == 4


def test_training_curves_plot_the_elbo_and_validation_as_its_own_series():
    hist = [{"phase": "train", "step": s, "loss": 2.0, "elbo": -1.5 + s / 100, "kl": 0.1, "nll": 1.4}
            for s in range(0, 50, 5)]
    # a validation report: its own keys (and, as older reports did, the training keys reused)
    hist.append({"phase": "valid", "step": 25, "valid_elbo": -1.2, "valid_kl": 0.2, "valid_nll": 1.0,
                 "kl": 9.0, "nll": 9.0, "loss": 9.0})
    fig = figures.training_curves_figure(hist)
    by_name = {d.name: d for d in fig.data}
    assert list(by_name["training ELBO"].y)[:2] == [-1.5, -1.45]  # the ELBO, not -loss
    assert 9.0 not in list(by_name["training KL"].y) and 9.0 not in list(by_name["training NLL"].y)
    assert list(by_name["validation ELBO"].x) == [25] and list(by_name["validation KL"].y) == [0.2]
    assert by_name["training KL"].xaxis == "x2" and by_name["training ELBO"].xaxis == "x"
    assert not any("loss" in n for n in by_name)
    assert "Waiting" in figures.training_curves_figure([]).layout.annotations[0].text


def test_training_curves_without_an_elbo_say_they_show_the_loss():
    fig = figures.training_curves_figure([{"step": s, "loss": 2.0, "kl": 0.1, "nll": 1.9} for s in range(5)])
    names = [d.name for d in fig.data]
    assert "training ELBO" not in names and any("not the ELBO" in n for n in names)


def test_comparison_colours_follow_the_measure_and_show_standard_errors():
    rows = [{"model": "VRNN", "measure": "ELBO", "value": 1.2, "se": 0.01},
            {"model": "RNN", "measure": "exact log-likelihood", "value": 1.3}]
    fig = figures.comparison_figure(rows)
    assert [d.name for d in fig.data] == ["ELBO", "exact log-likelihood"]
    assert fig.data[1].marker.color == figures.MEASURE_COLORS["exact"]  # not the IWAE colour at K = 0
    assert list(fig.data[0].error_y.array) == [0.01]
    rows.insert(1, {"model": "VRNN", "measure": "IWAE (K=16)", "value": 1.25, "se": 0.02})
    fig = figures.comparison_figure(rows)
    assert fig.data[1].marker.color == figures.MEASURE_COLORS["IWAE"]
    assert fig.data[2].marker.color == figures.MEASURE_COLORS["exact"]


def test_per_step_comparison_has_one_line_per_model():
    fig = figures.per_step_comparison_figure({"a": np.ones(10), "b": np.zeros(10)}, step=4)
    assert len(fig.data) == 2 and shapes_at(fig) == [4]


def test_presentation_style_is_bigger_everywhere():
    tr = fake_trace()
    normal = trace_views.kl_ink_figure(tr, style=Style())
    big = trace_views.kl_ink_figure(tr, style=Style.presentation())
    assert big.layout.font.size > normal.layout.font.size
    assert big.data[0].line.width > normal.data[0].line.width
    assert big.data[1].marker.size > normal.data[1].marker.size


def test_figures_serialize_to_json():
    tr = fake_trace()
    fig, spec = trace_views.trace_views(tr, )
    for f in (trace_views.kl_ink_figure(tr, 3), trace_views.latent_departure_figure(tr, 3),
              trace_views.kl_heatmap_figure(tr, 3), fig):
        json.loads(f.to_json())  # no numpy scalars or NaN that plotly.js cannot read
    json.loads(json.dumps(spec, allow_nan=False))


def test_latent_dims_subsample_long_inks():
    tr = fake_trace(T=900, Z=3)
    fig = trace_views.latent_dims_figure(tr, step=451, max_points=300)
    lines = [d for d in fig.data if d.customdata is not None]
    assert all(len(d.x) <= 300 for d in lines)
    assert lines[0].x[-1] >= 890  # still spans the whole ink
    assert cursor_xs(fig) == [451]
