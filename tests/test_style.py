"""Style features and the continuation benchmark (vrnn.style)."""

from dataclasses import replace

import numpy as np
import pytest

from vrnn.ink import Ink
from vrnn.model import VRNN, VRNNConfig
from vrnn.style import FEATURES, continuation_benchmark, held_out_lines, split_at_middle_lift, style_features
from vrnn.synthetic import SyntheticWriter, generate_line, writers_in_split

PLAIN = SyntheticWriter(writer_id="syn-test", font="cursive", x_height=40.0, slant_deg=0.0, letter_jitter=0.0,
                        baseline_slope=0.0, baseline_wave=0.0, deform_amp=0.0, tremor=0.0, lift_prob=0.0)


def _feature(ink, name):
    return style_features(ink)[FEATURES.index(name)]


def test_slant_follows_the_writers_shear():
    for font in ("cursive", "futural"):
        slants = [_feature(generate_line("hello little world", replace(PLAIN, font=font, slant_deg=s),
                                         np.random.default_rng(0)), "slant") for s in (-15.0, 0.0, 20.0)]
        assert slants[0] + 8.0 < slants[1] < slants[2] - 8.0, (font, slants)
    # upright print reads upright; the Hershey script fonts lean right by themselves
    assert abs(slants[1]) < 5.0


def test_features_ignore_position_and_scale_except_size():
    ink = generate_line("minimum effort", PLAIN, np.random.default_rng(1))
    big = Ink(strokes=[s * 3.0 + (100.0, -40.0) for s in ink.strokes])
    a, b = style_features(ink), style_features(big)
    i = FEATURES.index("log_height")
    assert np.isclose(b[i] - a[i], np.log(3.0))
    assert np.allclose(np.delete(a, i), np.delete(b, i), rtol=1e-6, atol=1e-9)


def test_print_has_shorter_strokes_and_more_lifts_than_cursive():
    text = "summer morning"
    cursive = generate_line(text, PLAIN, np.random.default_rng(2))
    printed = generate_line(text, replace(PLAIN, font="futural"), np.random.default_rng(2))
    assert _feature(printed, "stroke_length") < 0.5 * _feature(cursive, "stroke_length")
    assert _feature(printed, "lift_rate") > 2.0 * _feature(cursive, "lift_rate")


def test_split_at_middle_lift():
    ink = generate_line("one two three four", PLAIN, np.random.default_rng(3))
    first, second = split_at_middle_lift(ink)
    assert len(first.strokes) + len(second.strokes) == len(ink.strokes)
    assert all(np.array_equal(a, b) for a, b in zip(first.strokes + second.strokes, ink.strokes))
    assert abs(first.num_points - second.num_points) < 0.5 * ink.num_points
    assert split_at_middle_lift(Ink(strokes=[np.zeros((3, 2))])) is None


def _held_out_lines(per_writer=3, writers=10):
    return held_out_lines(writers=writers, per_writer=per_writer, seed=5)


class _Imitator:
    """Continues a prefix with the second half of another line by the same writer: a
    perfect imitator of the writer's style."""

    preprocess_config = None

    def __init__(self, inks, same_writer: bool):
        self.inks, self.same = inks, same_writer

    def continue_ink(self, prefix, *, n, steps, temperature, seed):
        pool = [i for i in self.inks if (i.writer == prefix.writer) == self.same and i.label != prefix.label]
        other = pool[seed % len(pool)]
        second = split_at_middle_lift(other)[1]
        shift = prefix.strokes[-1][-1] - second.strokes[0][0]
        return [Ink(strokes=[s + shift for s in second.strokes])]


def test_style_score_separates_an_imitator_from_a_stranger():
    inks = _held_out_lines()
    good = continuation_benchmark(_Imitator(inks, same_writer=True), inks)
    bad = continuation_benchmark(_Imitator(inks, same_writer=False), inks)
    assert good.lines == bad.lines == len(inks)
    assert abs(good.chance_score - 0.5) < 0.1 and abs(good.oracle_score - good.style_score) < 0.1
    assert good.style_score > 0.7 > 0.6 > bad.style_score
    assert 0.6 < good.size_ratio_median < 1.6


class _Stretcher(_Imitator):
    """The same writer's second half, drawn twice as wide: a hand with the wrong advance."""

    def continue_ink(self, prefix, **kw):
        (ink,) = super().continue_ink(prefix, **kw)
        x0 = ink.strokes[0][0]
        return [Ink(strokes=[(s - x0) * [2.0, 1.0] + x0 for s in ink.strokes])]


def test_per_feature_scores_say_which_part_of_the_hand_is_kept():
    inks = _held_out_lines()
    good = continuation_benchmark(_Imitator(inks, same_writer=True), inks)
    wide = continuation_benchmark(_Stretcher(inks, same_writer=True), inks)
    assert set(good.features) == set(FEATURES)
    for name, f in good.features.items():
        assert set(f) == {"continuation", "oracle", "chance", "prefix", "bias"}
        assert all(0.0 <= f[k] <= 1.0 for k in ("continuation", "oracle", "chance", "prefix"))
        assert abs(f["bias"]) < 0.6, name  # a same-writer line: no systematic drift
    # the prefix (the same line's first half) is at least as near as another line by its writer
    assert good.prefix_score > good.chance_score + 0.2
    # twice as wide: advance drifts up by standard deviations, height and slant are not the problem
    assert wide.features["advance"]["bias"] > 1.0 > abs(wide.features["log_height"]["bias"])
    assert wide.features["advance"]["continuation"] < good.features["advance"]["continuation"]
    assert good.as_dict()["features"]["slant"] == good.features["slant"]


def test_benchmark_runs_on_a_real_model_and_needs_two_writers():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = VRNN(VRNNConfig(hidden=16, mlp=16, latent=4, mixtures=3, x_features=8, z_features=8)).eval()
    inks = _held_out_lines(per_writer=2, writers=3)
    r = continuation_benchmark(model, inks)
    assert r.lines == len(inks) and np.isfinite(r.size_ratio_median) and 0.0 <= r.style_score <= 1.0
    with pytest.raises(ValueError, match="two writers"):
        continuation_benchmark(model, [i for i in inks if i.writer == inks[0].writer])


def test_benchmark_line_sets_give_every_line_a_same_writer_partner():
    from collections import Counter

    from vrnn.style import held_out_lines, lines_by_writer

    inks = held_out_lines(writers=5, per_writer=3)
    assert len(inks) == 15 and len({i.writer for i in inks}) == 5
    assert {i.writer for i in inks} <= {f"syn-{w:04d}" for w in writers_in_split("test")}
    for limit in (4, 5, 7, 15):
        chosen = lines_by_writer(inks, limit, per_writer=3)
        counts = Counter(i.writer for i in chosen)
        assert len(chosen) <= limit and min(counts.values()) >= 2, (limit, counts)
    with pytest.raises(ValueError, match="at least two"):
        held_out_lines(writers=3, per_writer=1)


def test_results_table_per_feature_rows_come_from_the_benchmark():
    """``scripts/results_table.py`` builds the README's per-feature table from real results."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("results_table", Path(__file__).parents[1] / "scripts" / "results_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    inks = _held_out_lines()
    runs = [continuation_benchmark(_Imitator(inks, same_writer=same), inks, temperature=t).as_dict()
            for same, t in ((True, 1.0), (False, 0.8))]
    res = {"synthetic-test": {"continuation": runs[0], "continuation_by_temperature": runs}}
    rows = table.feature_rows(res, res, ["synthetic-test"])
    assert rows[1].startswith("| synthetic, held-out writers: feature | VRNN-GMM (T 1 / 0.8)")
    body = {row.split(" | ")[0].lstrip("| "): row for row in rows[3:]}
    assert set(body) == {"all six", *FEATURES}
    slant = runs[0]["features"]["slant"], runs[1]["features"]["slant"]
    assert f"{slant[0]['continuation']:.3f} / {slant[1]['continuation']:.3f}" in body["slant"]
    assert body["slant"].endswith(f"{slant[1]['bias']:+.2f} |")


def test_latent_probe_step_table_lines_up_departures_with_the_pen():
    """``scripts/latent_probe.py``: one row per step from the third on, departures whitened by the prior."""
    import importlib.util
    from pathlib import Path

    import torch

    import vrnn
    from vrnn.model import VRNNConfig, build_model

    spec = importlib.util.spec_from_file_location("latent_probe", Path(__file__).parents[1] / "scripts" / "latent_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    torch.manual_seed(0)
    model = build_model(VRNNConfig(hidden=16, latent=3, mixtures=2, mlp=16, x_features=8, z_features=8)).eval()
    inks = vrnn.synthetic_inks(3, seed=1, split="test")
    deps, feats = probe.step_table(model, inks)
    traces = [model.trace(i) for i in inks]
    assert deps.shape == (sum(t.steps - 2 for t in traces), 3)
    tr = traces[0]
    want = (tr.post_mu - tr.prior_mu) / tr.prior_sigma
    np.testing.assert_allclose(deps[: tr.steps - 2], want[2:], rtol=1e-6)
    np.testing.assert_array_equal(feats["after_lift"][: tr.steps - 2], (tr.offsets[1:-1, 2] > 0.5).astype(float))
    assert np.all(np.abs(feats["turn"]) <= np.pi)
