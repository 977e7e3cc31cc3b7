"""trace / continue_ink / sample / evaluate, and checkpoints, on tiny untrained models."""

import copy
import json
import os
import pickle

import numpy as np
import pytest
import torch

import vrnn
from vrnn.inference import Inference, ink_digest, rollout_noise
from vrnn.model import VRNNConfig, build_model, copy_model

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
    T, Z = tr.steps, model.latent_size
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
    if not model.latent_size:
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


def test_the_one_cache_does_not_change_results(model):
    ink = _ink()
    fresh = copy.deepcopy(model).continue_ink(ink, n=2, steps=15, seed=6)  # a copy: a cache of its own
    inf = Inference(model)
    inf.clear()
    model.trace(ink, seed=6)  # fills the cache: the prepared ink, the state after it, the trace
    keys = {k[0] for k in inf.cache._data}
    assert keys == {"prepared", "state", "trace"}
    cached = model.continue_ink(ink, n=2, steps=15, seed=6)  # reads the prefix state from the cache
    for a, b in zip(fresh, cached):
        np.testing.assert_array_equal(a.points, b.points)
    assert Inference(model).cache is inf.cache  # one cache per model, however many handles


def test_models_are_plain_modules_and_copies_start_without_a_cache(model):
    model.trace(_ink())
    assert not any("lock" in type(v).__name__.lower() or "cache" in type(v).__name__.lower()
                   for v in vars(model).values())
    clone = copy.deepcopy(model)
    assert len(Inference(clone).cache) == 0 and Inference(clone).cache is not Inference(model).cache
    np.testing.assert_array_equal(clone.trace(_ink()).kl, model.trace(_ink()).kl)
    moved = copy_model(model, device="cpu")
    assert moved is not model and all(torch.equal(a, b) for a, b in zip(moved.parameters(), model.parameters()))


def test_the_cache_follows_weight_and_normalizer_changes(model):
    ink = _ink()
    before = model.trace(ink, seed=1).nll.copy()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.1)  # an in-place update, like an optimizer step
    after = model.trace(ink, seed=1).nll
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, copy.deepcopy(model).trace(ink, seed=1).nll)
    model.normalizer = vrnn.preprocess.Normalizer(mean=(0.1, 0.0), std=(2.0, 2.0))
    np.testing.assert_array_equal(model.trace(ink, seed=1).nll, copy.deepcopy(model).trace(ink, seed=1).nll)


def test_model_methods_hand_out_copies_inference_shares(model):
    ink = _ink()
    a = model.trace(ink)
    a.kl[:] = 99.0
    a.ink.strokes[0][:] = 0.0
    b = model.trace(ink)
    assert not (b.kl == 99.0).any() and b.ink.strokes[0].any()
    inf = Inference(model)
    assert inf.trace(ink) is inf.trace(ink.copy())  # same points: the same shared result
    assert inf.continue_ink(ink, n=2, steps=5) is inf.continue_ink(ink, n=2, steps=5)


def test_ink_digest_sees_points_stroke_breaks_and_times_not_labels():
    a = _ink()
    b = a.copy()
    b.label, b.writer = "other", "w9"
    assert ink_digest(a) == ink_digest(b)
    assert ink_digest(a) != ink_digest(a.transformed(shift=(1e-9, 0.0)))
    assert ink_digest(a) != ink_digest(vrnn.Ink(strokes=[np.concatenate(a.strokes)]))
    timed = vrnn.Ink(strokes=a.strokes, times=[np.arange(len(s), dtype=float) for s in a.strokes])
    later = vrnn.Ink(strokes=a.strokes, times=[np.arange(len(s), dtype=float) + 1 for s in a.strokes])
    assert ink_digest(timed) != ink_digest(later)


def test_iwae_over_several_noise_chunks(model):
    inks = [_ink(), _ink(scale=2.0), vrnn.Ink(strokes=[np.array([[0.0, 0.0], [5.0, 1.0], [9.0, 4.0]])])]
    inf = Inference(model)
    calls = []
    terms = model.terms
    model.terms = lambda *a: calls.append(a[0].shape[0]) or terms(*a)  # count model calls and their rows
    try:
        inf.clear()
        one = inf.evaluate(inks, importance_samples=12)
        single_calls = len(calls)
        inf.clear()
        calls.clear()
        many = inf.evaluate(inks, importance_samples=12, max_points=300)  # a few samples per call
    finally:
        del model.terms
    if model.latent_size:
        assert len(calls) > 3 * single_calls  # several chunks per batch were exercised
    for k in ("elbo_per_point", "kl_per_point", "iwae_per_point", "iwae_per_sequence"):
        assert many[k] == pytest.approx(one[k], rel=1e-6, abs=1e-6), k


def test_iwae_equals_a_direct_computation():
    torch.manual_seed(1)
    model = build_model(VRNNConfig(**TINY)).eval()
    ink, K, seed = _ink(), 16, 4
    got = Inference(model).evaluate([ink], importance_samples=K, seed=seed, max_points=500)
    prep = vrnn.preprocess.prepare(ink, model.preprocess_config)
    x = torch.from_numpy(model.normalizer.normalize(prep.offsets))[None]
    T = x.shape[1]
    eps = torch.randn(K, T, 4, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logw = []
        for k in range(K):  # one importance sample at a time: log p(x, z) - log q(z | x)
            t = model.terms(x, eps[k : k + 1])
            logw.append(float(t.latents.log_ratio.sum() - t.nll[0, 1:].sum()))
    logw = np.array(logw, np.float64)
    iwae = (np.logaddexp.reduce(logw) - np.log(K)) / (T - 1)
    assert got["iwae_per_point"] == pytest.approx(iwae, rel=1e-5)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_rnn_gmm_inference_with_lstm_or_gru(rnn):
    torch.manual_seed(0)
    model = build_model(VRNNConfig(model="rnn", rnn=rnn, **TINY)).eval()
    ink = _ink()
    tr = model.trace(ink)
    assert tr.kl_dims.shape == (tr.steps, 0) and (tr.kl == 0).all()
    prep, x = Inference(model).prepared(ink)
    out = model(x[None], torch.ones(1, x.shape[0]))
    np.testing.assert_allclose(tr.nll.sum() / (x.shape[0] - 1), out.elbo_loss.item(), rtol=1e-5)
    a, b = model.continue_ink(ink, n=3, steps=12, seed=2), model.continue_ink(ink, n=3, steps=12, seed=2)
    np.testing.assert_array_equal(a[1].points, b[1].points)
    # the rollout samples each step from the decoder of the state that read everything before it
    state = Inference(model).prefix_state(ink, seed=2)
    noise = rollout_noise(model, 2, 12, seed=2)
    with torch.inference_mode():
        gen = model.rollout(tuple(s.expand(-1, 2, -1).contiguous() for s in state), 12, noise, 0.7)
        full = torch.cat([x[None].expand(2, -1, -1), gen], 1)
        gmm = model.terms(full).gmm
        T = x.shape[0]
        for t in range(12):
            step = vrnn.distributions.GMMParams(*(getattr(gmm, f)[:, T + t] for f in gmm.__dataclass_fields__))
            again = step.sample(noise["gumbel"][:, t], noise["e"][:, t], noise["u_pen"][:, t], 0.7)
            torch.testing.assert_close(again, gen[:, t], rtol=1e-4, atol=1e-4)
    r = model.evaluate([ink], importance_samples=5)
    assert r["iwae_per_point"] == r["elbo_per_point"] and r["kl_per_point"] == 0.0
    assert len(model.sample(n=2, steps=10, seed=0)) == 2


def test_evaluate_reports_kl_per_dimension_and_active_units():
    torch.manual_seed(0)
    model = build_model(VRNNConfig(**TINY)).eval()
    with torch.no_grad():
        model.encoder.last.weight[:4] *= 50.0  # posterior means that move with the ink: every unit active
    inks = [_ink(), _ink(scale=2.0), _ink(shift=(5.0, 1.0))]
    r = model.evaluate(inks, importance_samples=3)
    assert len(r["kl_per_dim"]) == 4 and len(r["unit_activity"]) == 4
    assert sum(r["kl_per_dim"]) == pytest.approx(r["kl_per_point"], rel=1e-6)
    assert min(r["kl_per_dim"]) >= 0 and r["active_units"] == 4 and min(r["unit_activity"]) > 0.01
    assert r["informative_units"] == sum(v > 0.01 for v in r["kl_per_dim"])
    # the posterior mean of dimension 2 no longer depends on the ink: that unit is inactive
    with torch.no_grad():
        model.encoder.last.weight[2] = 0.0
        model.encoder.last.bias[2] = 0.3
    r2 = model.evaluate(inks, importance_samples=3)
    assert r2["active_units"] == 3 and r2["unit_activity"][2] == pytest.approx(0.0, abs=1e-10)
    # one ink, ELBO only: the variance over its steps of mu_q along the sampled path (the noise
    # evaluate draws for a batch of one ink: randn(1, T, Z) from the seed)
    ink = _ink()
    r1 = model.evaluate([ink], seed=7)
    _, x = Inference(model).prepared(ink)
    eps = torch.randn(1, x.shape[0], 4, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        mu = model.terms(x[None], eps).latents.post_mu[0].double()
    np.testing.assert_allclose(r1["unit_activity"], mu.var(0, unbiased=False).numpy(), rtol=1e-6, atol=1e-12)


def test_baseline_reports_no_latent_units(model):
    r = model.evaluate([_ink()], importance_samples=2)
    if not model.latent_size:
        assert r["kl_per_dim"] == [] and r["active_units"] == 0 and r["unit_activity"] == []
        assert r["informative_units"] == 0
    else:
        assert len(r["kl_per_dim"]) == model.latent_size


# ------------------------------------------------------------ adaptation (dynamic evaluation)
def _own_loss(m, ink, seed=0):
    _, x = Inference(m).prepared(ink)
    eps = torch.randn(1, x.shape[0], m.latent_size, generator=torch.Generator().manual_seed(seed)) if m.latent_size else None
    with torch.no_grad():
        return m(x[None], torch.ones(1, x.shape[0]), eps=eps).elbo_loss.item()


def test_adapted_copy_fits_the_ink_and_leaves_the_model_alone(model):
    ink = _ink()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = model.continue_ink(ink, n=2, steps=30, seed=1)
    adapted = model.adapted(ink, steps=20, lr=3e-3)
    assert adapted is not model and not adapted.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # the model itself is never trained
    assert any(not torch.equal(v, before[k]) for k, v in adapted.state_dict().items())
    # it practised this ink: its own bound on it is better than the model's
    assert _own_loss(adapted, ink) < _own_loss(model, ink) - 0.05
    # the same (ink, steps, lr, seed): the same copy and the same continuations, deterministically
    again = model.continue_ink(ink, n=2, steps=30, seed=1, adapt=20)
    Inference(model).clear()
    fresh = model.continue_ink(ink, n=2, steps=30, seed=1, adapt=20)
    for a, b in zip(again, fresh):
        np.testing.assert_array_equal(a.points, b.points)
    assert not np.allclose(again[0].points, plain[0].points)
    # and the model as trained still gives what it gave before
    for a, b in zip(plain, model.continue_ink(ink, n=2, steps=30, seed=1)):
        np.testing.assert_array_equal(a.points, b.points)


def test_adaptation_is_cached_and_zero_steps_is_the_model(model):
    ink = _ink()
    inf = Inference(model)
    assert inf.adapted(ink, steps=0) is model
    a = inf.adapted(ink, steps=3)
    assert inf.adapted(ink, steps=3) is a and inf.adapted(ink, steps=4) is not a


@pytest.mark.parametrize("kw", [dict(steps=-1), dict(steps=10_000), dict(lr=0.0), dict(lr=float("nan"))])
def test_adaptation_rejects_bad_settings(model, kw):
    with pytest.raises(ValueError, match="adaptation"):
        model.adapted(_ink(), **kw)


def test_every_continuation_seed_uses_the_same_adapted_copy(model):
    ink = _ink()
    inf = Inference(model)
    a = model.continue_ink(ink, n=2, steps=20, seed=0, adapt=3)
    copy_ = inf.adapted(ink, steps=3)
    b = model.continue_ink(ink, n=2, steps=20, seed=1, adapt=3)
    assert inf.adapted(ink, steps=3) is copy_  # not adapted again for the next seed
    for seed, got in ((0, a), (1, b)):
        want = copy_.continue_ink(ink, n=2, steps=20, seed=seed)
        for x, y in zip(got, want):
            np.testing.assert_array_equal(x.points, y.points)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_smc_with_one_particle_is_one_importance_sample_stepped_through_time(rnn):
    torch.manual_seed(1)
    model = build_model(VRNNConfig(rnn=rnn, **TINY)).eval()
    ink, seed = _ink(), 5
    got = Inference(model).evaluate([ink], particles=1, seed=seed)
    assert got["particles"] == 1 and got["resampled_per_sequence"] == 0  # one particle never resamples
    prep = vrnn.preprocess.prepare(ink, model.preprocess_config)
    x = torch.from_numpy(model.normalizer.normalize(prep.offsets))[None]
    T = x.shape[1]
    g = torch.Generator().manual_seed(seed)
    eps = torch.cat([torch.randn(1, 1, 4, generator=g) for _ in range(T)], 1)  # the filter's draws, in its order
    with torch.no_grad():
        t = model.terms(x, eps)  # the whole ink in one pass: the step-by-step state must agree
    logw = float(t.latents.log_ratio.sum() - t.nll[0, 1:].sum())
    assert got["smc_per_point"] == pytest.approx(logw / (T - 1), rel=1e-4)
    assert got["smc_per_sequence"] == pytest.approx(logw, rel=1e-4)


def test_smc_resamples_and_estimates_the_likelihood_of_each_ink():
    torch.manual_seed(2)
    model = build_model(VRNNConfig(**TINY)).eval()
    inks = [vrnn.Ink(strokes=[np.array([[0.0, 0.0], [4.0, 1.0], [9.0, 3.0], [12.0, 8.0]])]),
            vrnn.Ink(strokes=[np.array([[0.0, 0.0], [-3.0, 2.0], [-5.0, 6.0], [-5.0, 9.0], [-2.0, 12.0]]),
                              np.array([[3.0, 3.0], [6.0, 2.0]])])]
    # near-exact log p(x) of these short inks (q is near the posterior here): the IWAE with a large K
    exact = [Inference(model).evaluate([i], importance_samples=20000, seed=0)["iwae_per_sequence"] for i in inks]
    both = Inference(model).evaluate(inks, particles=512, seed=0)
    assert both["resampled_per_sequence"] > 0
    alone = [np.mean([Inference(model).evaluate([i], particles=512, seed=s)["smc_per_sequence"] for s in (0, 1)])
             for i in inks]
    # each ink's estimate, filtered alone or beside another ink, is near its log p(x)
    assert alone == pytest.approx(exact, abs=0.15)
    assert both["smc_per_sequence"] == pytest.approx(np.mean(exact), abs=0.15)
    # a prior far from q: the IWAE's weights degenerate, the resampling filter stays far tighter
    with torch.no_grad():
        model.prior.last.bias[:4] += 0.5
    far = Inference(model)
    assert far.evaluate(inks, particles=256)["smc_per_point"] > far.evaluate(inks, importance_samples=256)[
        "iwae_per_point"] + 0.1
    rnn = build_model(VRNNConfig(model="rnn", **TINY)).eval()
    r = rnn.evaluate(inks, particles=8)
    assert r["smc_per_point"] == r["elbo_per_point"] and r["resampled_per_sequence"] == 0
    with pytest.raises(ValueError, match="particles"):
        model.evaluate(inks, particles=-1)
