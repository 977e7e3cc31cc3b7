"""trace / continue_ink / sample / evaluate, and checkpoints, on tiny untrained models."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

import vrnn
from vrnn.model import VRNNConfig, build_model

TINY = dict(hidden=24, latent=4, mixtures=3, mlp=24, x_features=12, z_features=12)


@pytest.fixture(params=["vrnn", "rnn"])
def model(request):
    torch.manual_seed(0)
    return build_model(VRNNConfig(model=request.param, **TINY)).eval()


def _ink(scale=1.0, shift=(0.0, 0.0)):
    t = np.linspace(0, 4 * np.pi, 80)
    s1 = np.stack([t * 8, 20 * np.sin(t)], 1)
    s2 = np.stack([np.linspace(0, 30, 10), np.full(10, -30.0)], 1)
    return vrnn.Ink(strokes=[s1, s2], label="test").transformed(scale, shift)


def test_trace_shapes_and_values(model):
    tr = model.trace(_ink())
    T, Z = tr.steps, (4 if model.config.model == "vrnn" else 0)
    assert tr.offsets.shape == (T, 3) and tr.points.shape == (T, 2)
    for k in ("prior_mu", "prior_sigma", "post_mu", "post_sigma", "z", "kl_dims"):
        assert getattr(tr, k).shape == (T, Z), k
    assert tr.nll[0] == 0 and np.isfinite(tr.nll).all() and np.isfinite(tr.kl).all()
    assert (tr.kl >= -1e-6).all()
    np.testing.assert_allclose(tr.kl, tr.kl_dims.sum(1) if Z else 0, atol=1e-5)
    if Z:
        assert (tr.post_sigma > 0).all() and (tr.prior_sigma > 0).all()
    np.testing.assert_allclose(tr.points, tr.ink.points)
    csv = tr.to_csv().splitlines()
    assert len(csv) == T + 1 and csv[0].startswith("step,x,y")


def test_trace_matches_forward_loss(model):
    ink = _ink()
    tr = model.trace(ink, seed=3)
    prep = vrnn.preprocess.prepare(ink, model.preprocess_config)
    x = torch.from_numpy(model.normalizer.normalize(prep.offsets))[None]
    T = x.shape[1]
    eps = torch.randn(1, T, 4, generator=torch.Generator().manual_seed(3)) if tr.z.shape[1] else None
    out = model(x, torch.ones(1, T), eps=eps)
    np.testing.assert_allclose((tr.kl.sum() + tr.nll.sum()) / (T - 1), out.elbo_loss.item(), rtol=1e-4)


def test_same_seed_same_result_different_seed_differs(model):
    ink = _ink()
    a = model.continue_ink(ink, n=3, steps=25, seed=1)
    b = model.continue_ink(ink, n=3, steps=25, seed=1)
    c = model.continue_ink(ink, n=3, steps=25, seed=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.points, v.points)
    assert not np.allclose(a[0].points, c[0].points)
    s1, s2 = model.sample(n=2, steps=20, seed=5), model.sample(n=2, steps=20, seed=5)
    np.testing.assert_array_equal(s1[1].points, s2[1].points)


def test_continuations_start_at_prefix_end_and_have_requested_length(model):
    ink = _ink()
    outs = model.continue_ink(ink, n=4, steps=30, seed=0, temperature=0.5)
    assert len(outs) == 4
    end = ink.end_point()
    for o in outs:
        assert o.num_points == 30
        step = o.points[0] - end
        assert np.hypot(*step) <= model.preprocess_config.clamp * 1.5 * vrnn.preprocess.ink_scale(ink)


def test_continuations_are_scale_and_translation_equivariant(model):
    base = model.continue_ink(_ink(), n=2, steps=20, seed=4)
    big = model.continue_ink(_ink(scale=3.0, shift=(100.0, -50.0)), n=2, steps=20, seed=4)
    for a, b in zip(base, big):
        np.testing.assert_allclose(b.points, a.points * 3.0 + np.array([100.0, -50.0]), rtol=1e-4, atol=1e-3)


def test_prior_mean_mode_and_temperature(model):
    ink = _ink()
    m1 = model.continue_ink(ink, n=2, steps=10, seed=0, z_mode="mean")
    assert all(np.isfinite(i.points).all() for i in m1)
    with pytest.raises(ValueError):
        model.continue_ink(ink, z_mode="bogus")
    cold = model.continue_ink(ink, n=8, steps=40, seed=0, temperature=0.05)
    hot = model.continue_ink(ink, n=8, steps=40, seed=0, temperature=2.0)
    spread = lambda inks: np.std([np.diff(i.points, axis=0).std() for i in inks])  # noqa: E731
    assert spread(cold) < spread(hot)


def test_evaluate_iwae_bounds(model):
    inks = [_ink(), _ink(scale=2.0), vrnn.Ink(strokes=[np.array([[0.0, 0.0], [5.0, 1.0], [9.0, 4.0]])])]
    r0 = model.evaluate(inks)
    assert r0["sequences"] == 3 and r0["points"] > 0 and np.isfinite(r0["elbo_per_point"])
    r = model.evaluate(inks, importance_samples=64)
    if model.config.model == "rnn":
        assert r["iwae_per_point"] == r["elbo_per_point"] == pytest.approx(r0["elbo_per_point"], rel=1e-5)
    else:
        assert r["iwae_per_point"] >= r["elbo_per_point"] - 1e-3
        r1 = model.evaluate(inks, importance_samples=1)
        assert r["iwae_per_point"] >= r1["iwae_per_point"] - 0.02


def test_save_load_round_trip(model, tmp_path):
    model.card = {"data": "unit test"}
    model.save(tmp_path / "ck")
    m2 = vrnn.load_model(tmp_path / "ck", device="cpu")
    assert type(m2) is type(model) and m2.config == model.config and m2.card["data"] == "unit test"
    for (k, a), (_, b) in zip(model.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    a = model.continue_ink(_ink(), n=2, steps=10, seed=9)
    b = m2.continue_ink(_ink(), n=2, steps=10, seed=9)
    np.testing.assert_array_equal(a[0].points, b[0].points)


def _saved(tmp_path):
    m = build_model(VRNNConfig(**TINY))
    m.save(tmp_path)
    return tmp_path


def test_truncated_weights_raise_checkpoint_error(tmp_path):
    d = _saved(tmp_path)
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(vrnn.CheckpointError, match="model.safetensors"):
        vrnn.load_model(d)


def test_truncated_weights_without_checksum_still_refused(tmp_path):
    d = _saved(tmp_path)
    meta = json.loads((d / "config.json").read_text())
    meta.pop("weights_sha256")
    (d / "config.json").write_text(json.dumps(meta))
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-50])
    with pytest.raises(vrnn.CheckpointError):
        vrnn.load_model(d)


def test_edited_json_and_wrong_shapes(tmp_path):
    d = _saved(tmp_path)
    cfg = d / "config.json"
    good = cfg.read_text()
    cfg.write_text(good[:-20])
    with pytest.raises(vrnn.CheckpointError, match="JSON"):
        vrnn.load_model(d)
    meta = json.loads(good)
    meta["config"]["hidden"] = 48
    cfg.write_text(json.dumps(meta))
    with pytest.raises(vrnn.CheckpointError):
        vrnn.load_model(d)
    meta = json.loads(good)
    meta.pop("weights_sha256")
    meta["config"]["hidden"] = 48
    cfg.write_text(json.dumps(meta))
    with pytest.raises(vrnn.CheckpointError, match="shape"):
        vrnn.load_model(d)
    meta = json.loads(good)
    meta["normalizer"]["std"] = [0, 1]
    cfg.write_text(json.dumps(meta))
    with pytest.raises(vrnn.CheckpointError, match="config"):
        vrnn.load_model(d)


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/vrnn_pwned",))


def test_pickle_renamed_as_weights_is_refused_without_running(tmp_path):
    d = _saved(tmp_path)
    meta = json.loads((d / "config.json").read_text())
    meta.pop("weights_sha256")
    (d / "config.json").write_text(json.dumps(meta))
    if os.path.exists("/tmp/vrnn_pwned"):
        os.unlink("/tmp/vrnn_pwned")
    (d / "model.safetensors").write_bytes(pickle.dumps({"w": _Boom()}))
    with pytest.raises(vrnn.CheckpointError):
        vrnn.load_model(d)
    assert not os.path.exists("/tmp/vrnn_pwned")


def test_missing_folder_and_non_checkpoint(tmp_path):
    with pytest.raises(vrnn.CheckpointError, match="no such"):
        vrnn.load_model(tmp_path / "nope")
    with pytest.raises(vrnn.CheckpointError, match="config.json"):
        vrnn.load_model(tmp_path)


def test_save_is_atomic_no_temp_files_left(tmp_path):
    d = _saved(tmp_path)
    assert sorted(os.listdir(d)) == ["config.json", "model.safetensors"]


def test_state_cache_does_not_change_results(model):
    ink = _ink()
    fresh = model.continue_ink(ink, n=2, steps=15, seed=6)
    model._state_cache.items.clear()
    model.trace(ink, seed=6)  # fills the cache
    assert len(model._state_cache.items) == 2  # the prepared ink and the state after it
    cached = model.continue_ink(ink, n=2, steps=15, seed=6)
    for a, b in zip(fresh, cached):
        np.testing.assert_allclose(a.points, b.points, rtol=1e-5, atol=1e-4)


def test_a_model_that_served_inference_can_be_deep_copied(model):
    import copy

    model.trace(_ink())
    clone = copy.deepcopy(model)
    assert len(clone._state_cache.items) == 0 and clone._state_cache.lock is not model._state_cache.lock
    np.testing.assert_array_equal(clone.trace(_ink()).kl, model.trace(_ink()).kl)
