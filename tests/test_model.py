"""The VRNN-GMM math: KL, mixture density, masking, fast path == naive loop, numerics."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vrnn.distributions import GMMParams, gaussian_kl, gaussian_log_prob
from vrnn.inference import rollout_noise
from vrnn.model import RNNGMM, VRNN, Latents, Terms, VRNNConfig, build_model
from vrnn.reference import naive_forward, naive_rollout

TINY = dict(hidden=24, latent=4, mixtures=3, mlp=24, x_features=12, z_features=12)


def _batch(B=3, T=15, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 3, generator=g)
    x[..., 2] = (torch.rand(B, T, generator=g) < 0.2).float()
    return x, torch.ones(B, T)


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mq, mp = torch.randn(50, 8, generator=g), torch.randn(50, 8, generator=g)
    sq, sp = torch.rand(50, 8, generator=g) + 0.05, torch.rand(50, 8, generator=g) + 0.05
    ours = gaussian_kl(mq, sq, mp, sp)
    ref = kl_divergence(Normal(mq, sq), Normal(mp, sp))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert torch.allclose(gaussian_kl(mq, sq, mq, sq), torch.zeros_like(mq), atol=1e-6)


def test_gaussian_log_prob_matches_torch():
    x, mu, s = torch.randn(20), torch.randn(20), torch.rand(20) + 0.1
    torch.testing.assert_close(gaussian_log_prob(x, mu, s), Normal(mu, s).log_prob(x))


def test_mixture_density_matches_numpy():
    rng = np.random.default_rng(0)
    K = 4
    raw = torch.from_numpy(rng.normal(size=(6, 6 * K + 1)).astype(np.float64))
    p = GMMParams.from_raw(raw, K, 1e-2)
    dx, dy, pen = rng.normal(size=6), rng.normal(size=6), (rng.random(6) < 0.5).astype(float)
    x = torch.from_numpy(np.stack([dx, dy, pen], 1))
    ours = p.nll(x).numpy()
    pi = np.exp(p.logit_pi.numpy())
    pi /= pi.sum(1, keepdims=True)
    mx, my, sx, sy, r = (v.numpy() for v in (p.mu_x, p.mu_y, p.sigma_x, p.sigma_y, p.rho))
    zx, zy = (dx[:, None] - mx) / sx, (dy[:, None] - my) / sy
    dens = np.exp(-(zx**2 + zy**2 - 2 * r * zx * zy) / (2 * (1 - r**2))) / (2 * np.pi * sx * sy * np.sqrt(1 - r**2))
    q = 1 / (1 + np.exp(-p.pen_logit.numpy()))
    ref = -np.log((pi * dens).sum(1)) - np.log(np.where(pen > 0.5, q, 1 - q))
    np.testing.assert_allclose(ours, ref, rtol=1e-8)


def test_mixture_sample_statistics_match_parameters():
    # one component: the sample mean/cov/correlation are the component's
    raw = torch.zeros(20000, 7)
    raw[:, 1], raw[:, 2] = 0.5, -1.0  # means
    raw[:, 5] = 0.8  # rho logit
    p = GMMParams.from_raw(raw, 1, 0.0)
    g = torch.Generator().manual_seed(0)
    gumbel = -torch.log(-torch.log(torch.rand(20000, 1, generator=g)))
    s = p.sample(gumbel, torch.randn(20000, 2, generator=g), torch.rand(20000, generator=g))
    assert abs(s[:, 0].mean() - 0.5) < 0.03 and abs(s[:, 1].mean() + 1.0) < 0.03
    rho = float(p.rho[0, 0])
    assert abs(np.corrcoef(s[:, 0], s[:, 1])[0, 1] - rho) < 0.02
    assert abs(s[:, 2].mean() - 0.5) < 0.02  # pen logit 0


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_fast_path_equals_naive_loop(rnn):
    torch.manual_seed(0)
    m = VRNN(VRNNConfig(rnn=rnn, **TINY))
    x, mask = _batch()
    mask[2, 9:] = 0
    eps = torch.randn(3, 15, 4)
    a, b = m(x, mask, eps=eps), naive_forward(m, x, mask, eps)
    torch.testing.assert_close(a.loss, b.loss)
    torch.testing.assert_close(a.kl, b.kl)
    torch.testing.assert_close(a.nll, b.nll)
    ga = torch.autograd.grad(a.loss, list(m.parameters()))
    gb = torch.autograd.grad(b.loss, list(m.parameters()))
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["vrnn", "rnn"])
def test_padding_changes_nothing(kind):
    torch.manual_seed(0)
    m = build_model(VRNNConfig(model=kind, **TINY))
    x, _ = _batch(B=2, T=12)
    eps = torch.randn(2, 12, 4)
    lens = [12, 7]
    xb, mask = x.clone(), torch.ones(2, 12)
    mask[1, 7:] = 0
    xb[1, 7:] = 123.0  # garbage in the padding
    out = m(xb, mask, eps=eps)
    for i, n in enumerate(lens):
        single = m(x[i : i + 1, :n], torch.ones(1, n), eps=eps[i : i + 1, :n])
        torch.testing.assert_close(out.kl[i, :n], single.kl[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out.nll[i, :n], single.nll[0], rtol=1e-5, atol=1e-5)
        assert float(out.nll[i, n:].detach().abs().sum()) == 0.0 and float(out.kl[i, n:].detach().abs().sum()) == 0.0
    total = (out.kl.sum() + out.nll.sum()) / (mask.sum() - 2)
    torch.testing.assert_close(out.elbo_loss, total)


def test_start_row_is_not_scored():
    m = VRNN(VRNNConfig(**TINY))
    x, mask = _batch(B=1, T=5)
    with torch.no_grad():
        out = m(x, mask)
    assert float(out.nll[0, 0]) == 0.0 and float(out.points) == 4.0


@pytest.mark.parametrize("kind", ["vrnn", "rnn"])
def test_gradients_finite_on_extreme_inputs(kind):
    torch.manual_seed(0)
    m = build_model(VRNNConfig(model=kind, **TINY))
    cases = {
        "huge": torch.tensor([[[0.0, 0.0, 0.0], [1e4, -1e4, 0.0], [-3e4, 2e4, 1.0], [1e4, 1e4, 0.0]]]),
        "zeros": torch.zeros(1, 200, 3),
        "single": torch.zeros(1, 1, 3),
    }
    for name, x in cases.items():
        out = m(x, torch.ones(x.shape[:2]))
        assert torch.isfinite(out.loss), name
        out.loss.backward()
        for p in m.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), name
        m.zero_grad()


def test_free_bits_and_kl_weight():
    m = VRNN(VRNNConfig(**TINY))
    x, mask = _batch()
    eps = torch.randn(3, 15, 4)
    base = m(x, mask, eps=eps)
    warm = m(x, mask, eps=eps, kl_weight=0.0)
    torch.testing.assert_close(warm.loss, base.nll.sum() / base.points)
    fb = m(x, mask, eps=eps, free_bits=100.0)  # every dim held at 100 nats/point
    torch.testing.assert_close(fb.loss, (100.0 * 4 * base.points + base.nll.sum()) / base.points)
    torch.testing.assert_close(fb.elbo_loss, base.elbo_loss)


def test_auxiliary_cost_reads_z_alone_and_never_enters_the_elbo():
    from torch.distributions import Bernoulli

    from vrnn.model import add_aux_head

    m = VRNN(VRNNConfig(**TINY))
    assert m.aux is None and m.config.aux_hidden == 0
    x, mask = _batch()
    mask[0, 10:] = 0.0
    eps = torch.randn(3, 15, 4)
    base = m(x, mask, eps=eps)
    with pytest.raises(ValueError, match="auxiliary head"):
        m(x, mask, eps=eps, aux_weight=1.0)
    add_aux_head(m, hidden=8, seed=1)
    assert m.config.aux_hidden == 8 and add_aux_head(m) is m and m.aux[0].out_features == 8  # a second call keeps it
    out = m(x, mask, eps=eps, aux_weight=0.5)
    # the same ELBO; the objective adds 0.5 x the masked auxiliary NLL per scored point
    torch.testing.assert_close(out.elbo_loss, base.elbo_loss)
    torch.testing.assert_close(out.loss, base.loss + 0.5 * out.aux.sum() / out.points)
    assert (out.aux[0, 10:] == 0).all() and (out.aux[:, 0] == 0).all()  # masked, and row 0 is given, not scored
    # -log p_aux(x_t | z_t) by torch.distributions, from the z the recurrence used
    z = out.terms.latents.z
    raw = m.aux(z)
    sigma = torch.nn.functional.softplus(raw[..., 2:4]) + m.config.xy_sigma_floor
    ref = -(Normal(raw[..., :2], sigma).log_prob(x[..., :2]).sum(-1) + Bernoulli(logits=raw[..., 4]).log_prob(x[..., 2]))
    torch.testing.assert_close(m.aux_nll(z, x), ref)
    # its gradient reaches the encoder through z (the fused loop's backward takes d z)
    m.zero_grad()
    (out.aux.sum()).backward()
    assert m.encoder.last.weight.grad.abs().sum() > 0 and m.decoder.last.weight.grad is None
    with pytest.raises(ValueError, match="aux_hidden"):
        VRNNConfig(model="rnn", aux_hidden=8)


def test_a_model_with_an_auxiliary_head_saves_and_loads(tmp_path):
    from vrnn.model import add_aux_head, load_model

    m = add_aux_head(VRNN(VRNNConfig(**TINY)), hidden=8)
    m.save(tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu")
    assert back.config.aux_hidden == 8
    torch.testing.assert_close(back.aux[0].weight, m.aux[0].weight)


def test_free_bits_per_dimension_vs_on_the_total():
    from vrnn.model import free_bits_penalty

    # two points, two dimensions: dimension 0 carries 0.5 nats/point, dimension 1 none
    kl = torch.tensor([[[0.5, 0.0], [0.5, 0.0]]], requires_grad=True)
    n = torch.tensor(2.0)
    dim = free_bits_penalty(kl, n, 0.2, "dim")  # dim 0 pays 0.5, dim 1 is lifted to its floor 0.2
    torch.testing.assert_close(dim, torch.tensor((0.5 + 0.2) * 2))
    total = free_bits_penalty(kl, n, 0.2, "total")  # the rate 0.5 is above the total floor 0.4: paid as is
    torch.testing.assert_close(total, torch.tensor(0.5 * 2))
    (g,) = torch.autograd.grad(total, kl)
    assert torch.all(g == 1.0)  # above the floor every dimension pays, the empty one included
    low = free_bits_penalty(kl, n, 0.5, "total")  # total floor 1.0 > rate 0.5: free, no gradient at all
    (g,) = torch.autograd.grad(low, kl)
    torch.testing.assert_close(low, torch.tensor(1.0 * 2))
    assert torch.all(g == 0.0)
    (g,) = torch.autograd.grad(free_bits_penalty(kl, n, 0.2, "dim"), kl)
    assert torch.all(g[..., 0] == 1.0) and torch.all(g[..., 1] == 0.0)  # per dimension: only dim 0 pays
    with pytest.raises(ValueError, match="free_bits_mode"):
        free_bits_penalty(kl, n, 0.2, "per-step")
    # through the model: same ELBO, objective as documented
    m = VRNN(VRNNConfig(**TINY))
    x, mask = _batch()
    eps = torch.randn(3, 15, 4)
    out = m(x, mask, eps=eps, free_bits=100.0, free_bits_mode="total")
    torch.testing.assert_close(out.loss, (100.0 * 4 * out.points + out.nll.sum()) / out.points)
    torch.testing.assert_close(out.elbo_loss, m(x, mask, eps=eps).elbo_loss)


def test_rnn_baseline_has_no_latents_and_same_recurrent_size():
    v, r = VRNN(VRNNConfig(**TINY)), RNNGMM(VRNNConfig(model="rnn", **TINY))
    assert r.rnn.hidden_size == v.rnn.hidden_size
    out = r(*_batch())
    assert out.kl.abs().sum() == 0 and out.kl_dims.shape[-1] == 0
    assert out.loss == out.elbo_loss


def test_config_validation_and_round_trip():
    c = VRNNConfig(**TINY)
    assert VRNNConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError):
        VRNNConfig(model="transformer")
    with pytest.raises(ValueError):
        VRNNConfig.from_dict({**c.to_dict(), "bogus": 1})
    with pytest.raises(ValueError):
        VRNN(VRNNConfig(model="rnn"))


def test_loss_decreases_when_training_on_one_batch():
    torch.manual_seed(0)
    m = VRNN(VRNNConfig(**TINY))
    t = torch.linspace(0, 6 * math.pi, 60)
    x = torch.stack([torch.cos(t) * 0.3, torch.sin(t) * 0.3, (torch.arange(60) % 20 == 19).float()], -1)[None].repeat(4, 1, 1)
    mask = torch.ones(4, 60)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        opt.zero_grad()
        out = m(x, mask)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        first = first if first is not None else out.loss.item()
    assert out.loss.item() < first - 1.0


def test_gumbel_component_choice_matches_mixture_weights():
    K, N = 3, 30000
    raw = torch.zeros(N, 6 * K + 1)
    raw[:, :K] = torch.log(torch.tensor([0.2, 0.5, 0.3]))
    raw[:, K : 2 * K] = torch.tensor([-10.0, 0.0, 10.0])  # components told apart by mu_x
    p = GMMParams.from_raw(raw, K, 1e-2)
    g = torch.Generator().manual_seed(1)
    gumbel = -torch.log(-torch.log(torch.rand(N, K, generator=g)))
    s = p.sample(gumbel, torch.zeros(N, 2), torch.rand(N, generator=g))
    frac = [(s[:, 0].round() == v).float().mean().item() for v in (-10.0, 0.0, 10.0)]
    np.testing.assert_allclose(frac, [0.2, 0.5, 0.3], atol=0.015)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize("z_mode", ["sample", "mean"])
def test_fast_rollout_equals_naive_sampler(rnn, z_mode):
    torch.manual_seed(0)
    m = VRNN(VRNNConfig(rnn=rnn, **TINY)).eval()
    with torch.inference_mode():
        state = (torch.randn(3, 24), torch.randn(3, 24))
        noise = rollout_noise(m, 3, 40, seed=0)
        for tau in (1.0, 0.4):
            fast = m.rollout(state, 40, noise, tau, z_mode)
            torch.testing.assert_close(fast, naive_rollout(m, state, 40, noise, tau, z_mode))
        # the prior mean ignores eps_z; a sample does not
        other = dict(noise, eps_z=torch.randn_like(noise["eps_z"]))
        same = torch.equal(m.rollout(state, 40, other, 1.0, z_mode), m.rollout(state, 40, noise, 1.0, z_mode))
        assert same == (z_mode == "mean")


def test_terms_are_typed_and_the_baseline_has_no_latents():
    x, _ = _batch(B=2, T=9)
    v = VRNN(VRNNConfig(**TINY))
    r = RNNGMM(VRNNConfig(model="rnn", **TINY))
    assert v.latent_size == 4 and r.latent_size == 0
    with torch.no_grad():
        tv, tr = v.terms(x, torch.randn(2, 9, 4)), r.terms(x)
        hs, _ = r.run(x)
    assert isinstance(tv, Terms) and isinstance(tv.latents, Latents) and tr.latents is None
    assert tv.latents.kl_dims.shape == (2, 9, 4) and tv.latents.log_ratio.shape == (2, 9)
    assert tv.nll.shape == tr.nll.shape == (2, 9) and tv.h_prev.shape == tr.h_prev.shape == (2, 9, 24)
    # h_prev[:, t] is the state before step t: the baseline's first is zero, its next the LSTM's output
    assert float(tr.h_prev[:, 0].abs().sum()) == 0.0
    torch.testing.assert_close(tr.h_prev[:, 1:], hs[:, :-1])


def test_named_layers_are_the_sequential_positions():
    v = VRNN(VRNNConfig(**TINY))
    assert v.decoder.first is v.decoder[0] and v.decoder.middle is v.decoder[2] and v.decoder.last is v.decoder[4]
    assert v.encoder.first is v.encoder[0] and v.encoder.last is v.encoder[2] and v.phi_z.first is v.phi_z.last
    with pytest.raises(AttributeError):
        v.prior.middle
    assert "decoder.4.weight" in v.state_dict()  # checkpoint keys unchanged


@pytest.mark.parametrize("with_eps", [True, False])
def test_fused_lstm_loop_equals_autograd_in_every_output_and_gradient(with_eps):
    # every output of the posterior pass, the final state included, under a random linear read-out
    torch.manual_seed(3)
    m = VRNN(VRNNConfig(**TINY))
    x, _ = _batch(B=3, T=11)
    x.requires_grad_(True)
    eps = torch.randn(3, 11, 4) if with_eps else None
    state = (torch.randn(3, 24), torch.randn(3, 24))
    fused = m.posterior_pass(x, eps, state)
    ref = m._posterior_autograd(x, eps, *state)
    names = ("h_prev", "mu", "sigma", "z", "phi_z")
    g = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(getattr(ref, k).shape, generator=g) for k in names}
    w_state = torch.randn(3, 24, generator=g)

    def readout(q):
        return sum((getattr(q, k) * weights[k]).sum() for k in names) + (q.state[0] * w_state).sum()

    for k in names:
        torch.testing.assert_close(getattr(fused, k), getattr(ref, k), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused.state[0], ref.state[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused.state[1], ref.state[1], rtol=1e-5, atol=1e-5)
    params = [p for p in m.parameters() if p.requires_grad]
    ga = torch.autograd.grad(readout(fused), params + [x], allow_unused=True)
    gb = torch.autograd.grad(readout(ref), params + [x], allow_unused=True)
    for (name, _), u, v in zip(list(m.named_parameters()) + [("x", None)], ga, gb):
        if u is None or v is None:
            assert u is None or float(u.abs().sum()) == 0.0, name
            assert v is None or float(v.abs().sum()) == 0.0, name
            continue
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-5, msg=name)


def test_latent_mlp_sets_the_prior_and_encoder_width_only():
    cfg = VRNNConfig(**{**TINY, "latent_mlp": 8, "z_features": 5})
    m = VRNN(cfg)
    assert m.prior.first.out_features == m.encoder.first.out_features == 8
    assert m.decoder.first.out_features == TINY["mlp"] and m.phi_z.first.out_features == 5
    assert VRNNConfig.from_dict(cfg.to_dict()) == cfg
    old = {k: v for k, v in cfg.to_dict().items() if k != "latent_mlp"}  # a checkpoint from before the field
    assert VRNNConfig.from_dict(old).latent_mlp is None and VRNN(VRNNConfig.from_dict(old)).prior.first.out_features == 24
    with pytest.raises(ValueError, match="latent_mlp"):
        VRNNConfig(latent_mlp=0)
    x, mask = _batch()
    eps = torch.randn(3, 15, 4)
    torch.testing.assert_close(m(x, mask, eps=eps).loss, naive_forward(m, x, mask, eps).loss)


def test_workspace_never_hands_out_a_buffer_a_pending_backward_still_holds():
    # two forwards before either backward (gradient accumulation, two losses): the second
    # must not reuse the first's saved buffers; then, once both are done, buffers are reused
    from vrnn import fused

    torch.manual_seed(1)
    m = VRNN(VRNNConfig(**TINY))
    x1, mask = _batch(seed=1)
    x2, _ = _batch(seed=2)
    eps1, eps2 = torch.randn(3, 15, 4), torch.randn(3, 15, 4)
    want = [torch.autograd.grad(naive_forward(m, x, mask, e).loss, list(m.parameters())) for x, e in
            ((x1, eps1), (x2, eps2))]
    for _ in range(2):  # the second round runs on reused buffers
        a, b = m(x1, mask, eps=eps1), m(x2, mask, eps=eps2)
        got_b = torch.autograd.grad(b.loss, list(m.parameters()))
        got_a = torch.autograd.grad(a.loss, list(m.parameters()))
        for got, ref in ((got_a, want[0]), (got_b, want[1])):
            for u, v in zip(got, ref):
                torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-6)
        del a, b
    pools = [p for p in fused._WORKSPACE.pools.values() if p]
    assert pools and all(len(p) <= fused._Workspace.KEEP for p in pools)
    assert all(fused._idle(buf) for p in pools for buf in p)  # all released once both backwards ran


def test_workspace_buffers_are_reused_step_after_step():
    from vrnn import fused

    m = VRNN(VRNNConfig(**{**TINY, "hidden": 20}))  # shapes of its own
    x, mask = _batch(T=17, seed=4)
    fused._WORKSPACE.pools.clear()
    m(x, mask).loss.backward()
    first = {k: [id(b) for b in p] for k, p in fused._WORKSPACE.pools.items()}
    assert first and all(len(ids) == len(set(ids)) for ids in first.values())
    for _ in range(3):
        m(x, mask).loss.backward()
    assert {k: [id(b) for b in p] for k, p in fused._WORKSPACE.pools.items()} == first  # the same buffers
    ts = fused._WORKSPACE.pools[(18, 3, 20), torch.float32, torch.device("cpu")]  # cs: its last row was the state
    state = m.posterior_pass(x, torch.randn(3, 17, 4)).state  # kept by the caller while training goes on
    kept = state[1].clone()
    m(x, mask).loss.backward()
    torch.testing.assert_close(state[1], kept)  # the view held its buffer out of the pool
    assert ts


def test_workspace_holds_a_bounded_number_of_shapes_when_batch_lengths_vary():
    from vrnn import fused

    m = VRNN(VRNNConfig(**TINY))
    fused._WORKSPACE.pools.clear()
    for T in range(6, 30):  # every batch trimmed to another length
        x, mask = _batch(T=T, seed=T)
        m(x, mask).loss.backward()
    assert len(fused._WORKSPACE.pools) <= fused._Workspace.SHAPES
    assert any(k[0][0] == 29 for k in fused._WORKSPACE.pools)  # the latest shapes are the ones kept


def test_the_fused_loop_runs_its_steps_at_one_thread_and_gives_the_threads_back():
    """The per-step loop drops to one intra-op thread (its ops are too small to split) and
    restores the caller's thread count after the forward and after the backward."""
    from vrnn import fused

    seen = []
    real = fused._OneThread.__enter__
    before = torch.get_num_threads()

    def enter(self):  # the thread count inside each per-step block
        real(self)
        seen.append(torch.get_num_threads())

    try:
        torch.set_num_threads(2)
        fused._OneThread.__enter__ = enter
        torch.manual_seed(0)
        model = VRNN(VRNNConfig(hidden=16, latent=4, mixtures=3, mlp=16, x_features=8, z_features=8)).train()
        x = torch.randn(2, 12, 3) * 0.5
        x[..., 2] = 0.0
        out = model(x, torch.ones(2, 12), generator=torch.Generator().manual_seed(0))
        assert torch.get_num_threads() == 2
        out.loss.backward()
        assert torch.get_num_threads() == 2
        assert seen == [1, 1]  # the forward's steps, then the backward's
    finally:
        fused._OneThread.__enter__ = real
        torch.set_num_threads(before)


def _uneven(lengths, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    mask = (torch.arange(T)[None] < lengths[:, None]).float()
    x = torch.randn(len(lengths), T, 3, generator=g) * mask[..., None]
    x[..., 2] = (torch.rand(len(lengths), T, generator=g) < 0.2).float() * mask
    return x, mask


def test_active_rows_only_for_sorted_prefix_masks_with_padding():
    from vrnn.fused import active_rows

    _, mask = _uneven([6, 6, 3, 1], 6)
    assert active_rows(mask) == [4, 3, 3, 2, 2, 2]
    assert active_rows(mask.flip(0)) is None  # not longest first
    assert active_rows(torch.ones(3, 5)) is None  # nothing to skip
    holey = mask.clone()
    holey[0, 2] = 0.0
    assert active_rows(holey) is None  # not a prefix mask
    assert active_rows(torch.zeros(0, 4)) is None


@pytest.mark.parametrize("free_bits", [0.0, 0.3])
def test_rows_stop_at_their_end_with_the_same_loss_and_gradients(free_bits):
    # a batch sorted longest first (the trainer's) is not stepped past each row's end; the
    # same batch in another order is stepped in full: same per-point terms, same gradients
    torch.manual_seed(5)
    m = VRNN(VRNNConfig(**TINY))
    x, mask = _uneven([13, 13, 9, 4, 1], 13)
    eps = torch.randn(5, 13, 4)
    params = list(m.parameters())
    short = m(x, mask, eps=eps, free_bits=free_bits, free_bits_mode="total")
    full = m(x.flip(0), mask.flip(0), eps=eps.flip(0), free_bits=free_bits, free_bits_mode="total")
    ref = naive_forward(m, x, mask, eps)
    torch.testing.assert_close(short.elbo_loss, ref.elbo_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(short.loss, full.loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(short.kl, full.kl.flip(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(short.nll, full.nll.flip(0), rtol=1e-5, atol=1e-6)
    assert float(short.terms.latents.z[3, 4:].detach().abs().max()) == 0.0  # ended steps are zeros
    for u, v, (name, _) in zip(torch.autograd.grad(short.loss, params), torch.autograd.grad(full.loss, params),
                               m.named_parameters()):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-6, msg=name)


def test_fused_loop_with_ended_rows_and_a_start_state_matches_autograd():
    # the loop itself: a start state, a row of length 0, the gradients of x, h0 and c0, and
    # a read-out of the real steps only (what reads an ended step must not matter)
    from vrnn.fused import active_rows

    torch.manual_seed(7)
    m = VRNN(VRNNConfig(**TINY))
    x, mask = _uneven([11, 8, 8, 3, 0], 11, seed=3)
    x.requires_grad_(True)
    eps = torch.randn(5, 11, 4)
    state = (torch.randn(5, 24, requires_grad=True), torch.randn(5, 24, requires_grad=True))
    active = active_rows(mask)
    assert active[0] == 4  # the empty row never runs
    fused = m.posterior_pass(x, eps, state, active)
    ref = m._posterior_autograd(x, eps, *state)
    names = ("h_prev", "mu", "sigma", "z", "phi_z")
    g = torch.Generator().manual_seed(0)
    w = {k: torch.randn(getattr(ref, k).shape, generator=g) * mask[..., None] for k in names}

    def readout(q):
        return sum((getattr(q, k) * w[k]).sum() for k in names) + q.state[0][0].sum()  # row 0 runs to the end

    for k in names:
        torch.testing.assert_close(getattr(fused, k) * mask[..., None], getattr(ref, k) * mask[..., None],
                                   rtol=1e-5, atol=1e-5)
    inputs = list(m.parameters()) + [x, *state]
    ga = torch.autograd.grad(readout(fused), inputs, allow_unused=True)
    gb = torch.autograd.grad(readout(ref), inputs, allow_unused=True)
    for u, v in zip(ga, gb):
        if u is None or v is None:
            assert (u is None or float(u.abs().sum()) == 0.0) and (v is None or float(v.abs().sum()) == 0.0)
            continue
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-5)
