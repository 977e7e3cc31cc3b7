"""The preprocessing pipeline: Ink <-> offsets, cleaning, resampling, scale, windows."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import vrnn
from vrnn.preprocess import (
    Normalizer,
    PreprocessConfig,
    clean_ink,
    collate,
    drop_jitter,
    ink_scale,
    make_windows,
    prepare,
    rdp_indices,
    resample_stroke,
)

coords = st.floats(-1e4, 1e4, allow_nan=False, width=32)
stroke = arrays(np.float64, st.tuples(st.integers(1, 30), st.just(2)), elements=coords)


@settings(max_examples=60, deadline=None)
@given(st.lists(stroke, min_size=1, max_size=6))
def test_offsets_round_trip_exactly(strokes):
    ink = vrnn.Ink(strokes=strokes)
    off = ink.to_offsets()
    assert off.dtype == np.float32 and off.shape == (ink.num_points, 3)
    assert off[0, 0] == 0 and off[0, 1] == 0
    assert off[:, 2].sum() == len(strokes)  # one pen lift per stroke
    back = vrnn.Ink.from_offsets(off, start=tuple(strokes[0][0]))
    assert [len(s) for s in back.strokes] == [len(s) for s in strokes]
    for a, b in zip(back.strokes, strokes):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-2)
    again = back.to_offsets()
    np.testing.assert_allclose(again, off, rtol=1e-4, atol=1e-2)


def test_from_offsets_is_exact_inverse_on_float32_grid():
    off = np.array([[0, 0, 0], [1.5, -2, 0], [3, 1, 1], [10, 0, 0], [1, 1, 1]], np.float32)
    ink = vrnn.Ink.from_offsets(off)
    np.testing.assert_array_equal(ink.to_offsets(), off)
    assert len(ink.strokes) == 2


def test_ink_rejects_bad_arrays():
    with pytest.raises(vrnn.InkFormatError):
        vrnn.Ink(strokes=[np.array([[0.0, np.nan]])])
    with pytest.raises(vrnn.InkFormatError):
        vrnn.Ink(strokes=[np.zeros((0, 2))])
    with pytest.raises(vrnn.InkFormatError):
        vrnn.Ink(strokes=[np.zeros((3, 2))], times=[np.zeros(2)])


def test_scale_is_linear_and_robust():
    ink = vrnn.synthetic_inks(1, seed=3)[0]
    s = ink_scale(ink)
    assert ink_scale(ink.transformed(3.0, (50, -20))) == pytest.approx(3 * s, rel=1e-9)
    assert ink_scale(vrnn.Ink(strokes=[np.array([[0.0, 0.0]])])) == 1.0
    flat = vrnn.Ink(strokes=[np.array([[0.0, 5.0], [10.0, 5.0]])])
    assert ink_scale(flat) == pytest.approx(5.0)


def test_jitter_and_duplicates_dropped_endpoints_kept():
    pts = np.array([[0, 0], [0, 0], [0.1, 0], [5, 0], [5.05, 0.01], [10, 0]], float)
    keep = drop_jitter(pts, 1.0)
    np.testing.assert_array_equal(pts[keep], [[0, 0], [5, 0], [10, 0]])
    keep = drop_jitter(np.array([[0, 0], [0.1, 0]], float), 1.0)
    assert list(keep) == [0, 1]


def test_rdp_keeps_corners_drops_collinear():
    pts = np.array([[0, 0], [1, 0.01], [2, 0], [2, 1], [2, 2]], float)
    np.testing.assert_array_equal(rdp_indices(pts, 0.1), [0, 2, 4])


def test_resampling_makes_density_independent_of_source_sampling():
    t_fast = np.linspace(0, 2 * np.pi, 2000)  # a 120 Hz pen
    t_slow = np.linspace(0, 2 * np.pi, 60)  # a spatially sampled dataset
    circle = lambda t: np.stack([np.cos(t), np.sin(t)], 1) * 50  # noqa: E731
    a, _ = resample_stroke(circle(t_fast), 5.0)
    b, _ = resample_stroke(circle(t_slow), 5.0)
    assert abs(len(a) - len(b)) <= 1
    np.testing.assert_allclose(a[-1], circle(t_fast)[-1])
    steps = np.hypot(*np.diff(a, axis=0).T)
    assert steps.max() <= 5.0 + 1e-9 and steps.min() > 4.5


def test_times_are_interpolated():
    pts = np.array([[0, 0], [10, 0], [20, 0]], float)
    out, t = resample_stroke(pts, 5.0, np.array([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(t, [0, 0.5, 1, 2, 3])


def test_pipeline_is_scale_and_translation_equivariant():
    ink = vrnn.synthetic_inks(1, seed=7)[0]
    a = prepare(ink)
    b = prepare(ink.transformed(3.0, (1000.0, -40.0)))
    np.testing.assert_allclose(a.offsets, b.offsets, rtol=1e-5, atol=1e-5)
    assert b.scale == pytest.approx(3 * a.scale)
    np.testing.assert_allclose(b.ink.points, a.ink.points * 3 + [1000.0, -40.0], rtol=1e-9, atol=1e-6)


def test_prepare_clamps_outliers_and_matches_training_density():
    ink = vrnn.Ink(strokes=[np.array([[0.0, 0.0], [0.0, 10.0]]), np.array([[1e6, 0.0], [1e6, 10.0]])])
    off = prepare(ink).offsets
    assert np.abs(off[:, :2]).max() <= PreprocessConfig().clamp
    # any source sampling gives about 1 / spacing points per unit of scale along a stroke
    line = vrnn.Ink(strokes=[np.stack([np.linspace(0, 100, 7), np.linspace(0, 100, 7)], 1)])
    cleaned = clean_ink(line, scale=10.0)
    assert len(cleaned.points) == int(np.ceil(np.hypot(100, 100) / (0.15 * 10.0))) + 1


def test_normalizer_round_trip_and_serialization():
    rng = np.random.default_rng(0)
    seqs = [np.concatenate([rng.normal(0.3, 2.0, (50, 2)), (rng.random((50, 1)) < 0.1)], 1).astype(np.float32) for _ in range(5)]
    n = Normalizer.fit(seqs)
    assert n.std[0] == pytest.approx(2.0, rel=0.15)
    x = seqs[0]
    np.testing.assert_allclose(n.denormalize(n.normalize(x)), x, rtol=1e-5, atol=1e-5)
    assert Normalizer.from_dict(n.to_dict()) == n
    with pytest.raises(ValueError):
        Normalizer.from_dict({"mean": [0, 0], "std": [0, 1]})


def test_windows_cut_after_pen_lifts_and_start_at_zero():
    seq = np.zeros((1000, 3), np.float32)
    seq[:, 0] = 1.0
    seq[::37, 2] = 1.0
    wins = make_windows([seq], max_len=200, min_len=16)
    assert sum(len(w) for w in wins) >= 1000 - 16
    for w in wins:
        assert len(w) <= 200 and w[0, 0] == 0 and w[0, 1] == 0
    for w in wins[:-1]:
        assert w[-1, 2] == 1.0  # each cut right after a pen lift
    assert make_windows([seq[:10]], min_len=16) == []


def test_collate_pads_and_masks():
    x, mask = collate([np.ones((3, 3), np.float32), np.ones((5, 3), np.float32)])
    assert x.shape == (2, 5, 3) and mask.tolist() == [[1, 1, 1, 0, 0], [1] * 5]
    assert torch.all(x[0, 3:] == 0)


def test_real_uji_characters_go_through_the_pipeline(uji_dir):
    inks = vrnn.read_ink(sorted(uji_dir.glob("*.txt"))[0])
    for ink in inks[:20]:
        p = prepare(ink)
        assert np.isfinite(p.offsets).all() and len(p.offsets) >= 2
        assert 5 < len(p.offsets) < 200
