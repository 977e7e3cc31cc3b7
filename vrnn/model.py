"""The VRNN-GMM of Chung et al. (2015) and its RNN-GMM baseline.

Per step ``t`` on normalized stroke-3 offsets ``x_t = [dx, dy, pen_up]``:

- features      ``phi_x(x_t)``, ``phi_z(z_t)``                           (MLPs)
- prior         ``p(z_t | h_{t-1})            = N(mu_p, sigma_p)``       ``prior``
- encoder       ``q(z_t | x_t, h_{t-1})       = N(mu_q, sigma_q)``       ``encoder``
- decoder       ``p(x_t | z_t, h_{t-1})``: bivariate GMM + Bernoulli pen  ``decoder``
- recurrence    ``h_t = f([phi_x(x_t), phi_z(z_t)], h_{t-1})``           ``rnn`` (LSTM / GRU)

Objective per sequence: ``sum_t KL(q || p) - log p(x_t | z_t, h_{t-1})``, divided by the
number of scored points. Row 0 of every sequence is the start point (``dx = dy = 0``):
it is given, not scored (its NLL is masked); its KL still counts, so the loss is an
upper bound on ``-log p(x_{1:T} | x_0)``.

Only the recurrence runs inside the time loop: ``phi_x``, the ``x`` halves of the
encoder and RNN input matrices, the prior, the decoder and both loss terms are computed
for all ``T`` at once (see ``vrnn/reference.py`` for the naive loop it is tested against).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import CheckpointError, read_checkpoint, save_model
from .distributions import GMMParams, gaussian_kl, gaussian_log_prob, sample_gmm_rows, softplus_sigma
from .fused import active_rows, lstm_gate_scale, lstm_posterior_loop
from .inference import ADAPT_LR, ADAPT_STEPS, Inference
from .preprocess import Normalizer, PreprocessConfig


@dataclass
class VRNNConfig:
    """Everything that builds a model; stored in every checkpoint."""

    model: str = "vrnn"  # "vrnn" (VRNN-GMM) or "rnn" (RNN-GMM baseline, no latents)
    hidden: int = 256  # recurrent state size
    latent: int = 16  # z dimensions
    mixtures: int = 20  # bivariate Gaussian components
    rnn: str = "lstm"  # "lstm" or "gru"
    x_features: int = 64  # phi_x output
    z_features: int = 64  # phi_z output
    mlp: int = 256  # hidden width of the decoder MLP (and of prior / encoder unless latent_mlp is set)
    latent_mlp: int | None = None  # hidden width of the prior and encoder MLPs (None: mlp)
    z_sigma_floor: float = 1e-3
    xy_sigma_floor: float = 1e-2
    aux_hidden: int = 0  # auxiliary head p_aux(x_t | z_t) for training's --aux-weight (0: none; vrnn only)

    def __post_init__(self):
        if self.model not in ("vrnn", "rnn"):
            raise ValueError(f"model must be 'vrnn' or 'rnn', not {self.model!r}")
        if self.rnn not in ("lstm", "gru"):
            raise ValueError(f"rnn must be 'lstm' or 'gru', not {self.rnn!r}")
        for name in ("hidden", "mixtures", "x_features", "z_features", "mlp"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.latent_mlp is not None and int(self.latent_mlp) < 1:
            raise ValueError("latent_mlp must be >= 1 (or None: the same as mlp)")
        if self.model == "vrnn" and self.latent < 1:
            raise ValueError("a VRNN needs latent >= 1")
        if int(self.aux_hidden) < 0 or (self.aux_hidden and self.model != "vrnn"):
            raise ValueError("aux_hidden must be >= 0, and 0 for the RNN-GMM (it has no latent)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VRNNConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**d)


@dataclass
class Latents:
    """The latent side of a VRNN pass; every field ``(B, T, Z)``."""

    prior_mu: torch.Tensor  # p(z_t | h_{t-1})
    prior_sigma: torch.Tensor
    post_mu: torch.Tensor  # q(z_t | x_t, h_{t-1})
    post_sigma: torch.Tensor
    z: torch.Tensor  # the sample the recurrence used (the posterior mean when no noise was given)
    kl_dims: torch.Tensor  # KL(q || p) per dimension, nats

    @property
    def log_ratio(self) -> torch.Tensor:
        """``(B, T)``: ``log p(z_t | h_{t-1}) - log q(z_t | x_t, h_{t-1})`` (the IWAE weights'
        latent part); computed on demand, training never needs it."""
        return (gaussian_log_prob(self.z, self.prior_mu, self.prior_sigma)
                - gaussian_log_prob(self.z, self.post_mu, self.post_sigma)).sum(-1)


@dataclass
class Terms:
    """Every per-step term of one pass over ``x (B, T, 3)``; nothing masked yet.

    ``latents`` is ``None`` for the RNN-GMM baseline (it has none).
    """

    nll: torch.Tensor  # (B, T) -log p(x_t | ...), nats
    gmm: GMMParams  # the decoder's mixture at every step
    h_prev: torch.Tensor  # (B, T, H) h_{t-1}
    state: tuple[torch.Tensor, ...]  # recurrent state after the last step
    latents: Latents | None = None


@dataclass
class Output:
    """What a forward pass returns. Per-step tensors are zero where masked."""

    loss: torch.Tensor  # scalar to minimize (with KL weight / free bits applied)
    elbo_loss: torch.Tensor  # negative ELBO per scored point, nats
    kl: torch.Tensor  # (B, T)
    nll: torch.Tensor  # (B, T)
    kl_dims: torch.Tensor  # (B, T, Z); Z = 0 for the baseline
    points: torch.Tensor  # number of scored points
    terms: Terms | None = None  # the unmasked terms it was computed from
    aux: torch.Tensor | None = None  # (B, T) the auxiliary head's -log p_aux(x_t | z_t), masked (when trained with it)


class MLP(nn.Sequential):
    """``Linear -> ReLU -> ... -> Linear`` (``-> ReLU`` with ``final_act``).

    The fused loops read the weights directly, by name: ``first``, ``middle`` (three-layer
    MLPs) and ``last``. The positions inside the ``Sequential`` are the state-dict keys of
    every checkpoint (``decoder.4.weight``), so they stay.
    """

    def __init__(self, sizes: list[int], final_act: bool):
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if final_act or i < len(sizes) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)]

    @property
    def first(self) -> nn.Linear:
        return self.linears[0]

    @property
    def middle(self) -> nn.Linear:
        lin = self.linears
        if len(lin) != 3:
            raise AttributeError(f"an MLP of {len(lin)} linear layers has no single middle layer")
        return lin[1]

    @property
    def last(self) -> nn.Linear:
        return self.linears[-1]


class _WeightGradBank:
    """Inputs and output gradients of one weight matrix used at every time step.

    Autograd would compute the weight's gradient as ``T`` small matmuls during BPTT;
    :class:`_StepMatmul` banks the pairs instead, and :class:`_BankedWeight` (whose
    backward the engine runs only after every step that used the weight) turns them
    into the gradient with one large matmul, which runs near the machine's peak.
    """

    def __init__(self):
        self.inputs: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []


class _BankedWeight(torch.autograd.Function):
    """Identity on a weight; its backward emits the banked weight gradient."""

    @staticmethod
    def forward(ctx, w_t, bank):
        ctx.bank = bank
        return w_t.clone()

    @staticmethod
    def backward(ctx, g):
        bank = ctx.bank
        if bank.inputs:
            gw = torch.cat(bank.inputs).t() @ torch.cat(bank.grads)
            g = gw if g is None else g + gw
            bank.inputs.clear()
            bank.grads.clear()
        return g, None


class _StepMatmul(torch.autograd.Function):
    """``x @ w_t`` inside the time loop; the weight's gradient goes to the bank."""

    @staticmethod
    def forward(ctx, x, w_t, bank):
        ctx.save_for_backward(x, w_t)
        ctx.bank = bank
        return x @ w_t

    @staticmethod
    def backward(ctx, g):
        x, w_t = ctx.saved_tensors
        ctx.bank.inputs.append(x)
        ctx.bank.grads.append(g)
        gx = g @ w_t.t() if ctx.needs_input_grad[0] else None
        return gx, None, None


class _LoopWeight:
    """A weight read once per time step: ``x @ w_t`` with batched weight gradients when training."""

    def __init__(self, w_t: torch.Tensor):
        self.training = torch.is_grad_enabled() and w_t.requires_grad
        if self.training:
            self.bank = _WeightGradBank()
            self.w_t = _BankedWeight.apply(w_t, self.bank)
        else:
            self.w_t = w_t

    def addmm(self, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return bias + _StepMatmul.apply(x, self.w_t, self.bank)
        return torch.addmm(bias, x, self.w_t)


def _masks(mask: torch.Tensor):
    """``(kl_mask, nll_mask)``: row 0 is given, so its NLL is not scored."""
    nll_mask = mask.clone()
    nll_mask[:, 0] = 0.0
    return mask, nll_mask


class _Base(nn.Module):
    """What both models share: ``phi_x``, the recurrence update, saving, and the inference methods.

    A plain ``nn.Module``: inference state lives in :class:`vrnn.inference.Inference`
    (``copy.deepcopy(model)`` copies weights, config, normalizer, preprocessing and card).
    """

    def __init__(self, config: VRNNConfig):
        super().__init__()
        self.config = config
        self.normalizer = Normalizer()
        self.preprocess_config = PreprocessConfig()
        self.card: dict = {}
        c = config
        # phi_x(x_t): feature extractor of the offsets
        self.phi_x = MLP([3, c.x_features, c.x_features], final_act=True)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_size(self) -> int:
        """Dimensions of ``z_t`` (0 for the RNN-GMM baseline)."""
        raise NotImplementedError

    def _rnn_cell(self, input_size: int) -> nn.Module:
        H = self.config.hidden
        return nn.LSTMCell(input_size, H) if self.config.rnn == "lstm" else nn.GRUCell(input_size, H)

    def _rnn_update(self, gin: torch.Tensor, hh: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        """One recurrence step from pre-computed input part ``gin`` and ``hh = W_hh h + b_hh``."""
        if self.config.rnn == "lstm":
            i, f, g, o = (gin + hh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            return h, c
        gi_r, gi_u, gi_n = gin.chunk(3, 1)
        hh_r, hh_u, hh_n = hh.chunk(3, 1)
        r = torch.sigmoid(gi_r + hh_r)
        u = torch.sigmoid(gi_u + hh_u)
        n = torch.tanh(gi_n + r * hh_n)
        return n + u * (h - n), c

    def save(self, path, card: dict | None = None):
        """Write safetensors weights + ``config.json`` to the folder ``path`` (see ``vrnn.checkpoint``)."""
        return save_model(self, path, card)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def decode(self, dec_raw: torch.Tensor) -> GMMParams:
        return GMMParams.from_raw(dec_raw, self.config.mixtures, self.config.xy_sigma_floor)

    # ------------------------------------------------------------- inference
    # Thin delegates to Inference(self) (one cache per model object, kept outside it);
    # each returns a private copy of the cached result. See vrnn.inference.
    def trace(self, ink, *, seed: int = 0):
        """``vrnn.inference.Trace`` of ``ink``: prior and posterior of every ``z_t``, KL and NLL per step."""
        return copy.deepcopy(Inference(self).trace(ink, seed=seed))

    def continue_ink(self, ink, *, n: int = 8, steps: int = 300, temperature: float = 1.0, seed: int = 0,
                     z_mode: str = "sample", adapt: int = 0):
        """``n`` continuations of ``ink`` (see :meth:`vrnn.inference.Inference.continue_ink`);
        ``adapt > 0``: by a copy of the model first fine-tuned on ``ink`` for that many steps."""
        return copy.deepcopy(Inference(self).continue_ink(ink, n=n, steps=steps, temperature=temperature,
                                                          seed=seed, z_mode=z_mode, adapt=adapt))

    def adapted(self, ink, *, steps: int = ADAPT_STEPS, lr: float = ADAPT_LR, seed: int = 0):
        """A copy of this model fine-tuned on ``ink`` (see :meth:`vrnn.inference.Inference.adapted`)."""
        return copy.deepcopy(Inference(self).adapted(ink, steps=steps, lr=lr, seed=seed))

    def sample(self, *, n: int = 4, steps: int = 400, temperature: float = 1.0, seed: int = 0,
               z_mode: str = "sample", scale: float = 1.0):
        """Unconditional samples (see :meth:`vrnn.inference.Inference.sample`)."""
        return copy.deepcopy(Inference(self).sample(n=n, steps=steps, temperature=temperature, seed=seed,
                                                    z_mode=z_mode, scale=scale))

    def evaluate(self, inks, *, importance_samples: int = 0, batch_size: int = 32, seed: int = 0,
                 particles: int = 0) -> dict:
        """ELBO / IWAE (/ SMC with ``particles``) in nats per point (see :meth:`vrnn.inference.Inference.evaluate`)."""
        return copy.deepcopy(Inference(self).evaluate(inks, importance_samples=importance_samples,
                                                      batch_size=batch_size, seed=seed, particles=particles))


@dataclass
class _Posterior:
    """What :meth:`VRNN.posterior_pass` returns: per-step ``(B, T, .)`` tensors and the final state."""

    h_prev: torch.Tensor  # (B, T, H) h_{t-1}
    mu: torch.Tensor  # (B, T, Z) q(z_t | x_t, h_{t-1})
    sigma: torch.Tensor
    z: torch.Tensor
    phi_z: torch.Tensor  # (B, T, Fz)
    state: tuple[torch.Tensor, torch.Tensor]


class VRNN(_Base):
    """VRNN-GMM: a VAE at every step of an RNN (Chung et al. 2015)."""

    def __init__(self, config: VRNNConfig | None = None):
        config = config or VRNNConfig()
        if config.model != "vrnn":
            raise ValueError("VRNN needs config.model == 'vrnn' (use RNNGMM for 'rnn')")
        super().__init__(config)
        c = config
        H, Z, M, Fx, Fz = c.hidden, c.latent, c.mlp, c.x_features, c.z_features
        Ml = c.latent_mlp or M
        # phi_z(z_t)
        self.phi_z = MLP([Z, Fz], final_act=True)
        # p(z_t | h_{t-1}): mean and pre-softplus sigma
        self.prior = MLP([H, Ml, 2 * Z], final_act=False)
        # q(z_t | x_t, h_{t-1}) from [phi_x(x_t), h_{t-1}]
        self.encoder = MLP([Fx + H, Ml, 2 * Z], final_act=False)
        # p(x_t | z_t, h_{t-1}) from [phi_z(z_t), h_{t-1}]: 6K + 1 mixture/pen parameters
        self.decoder = MLP([Fz + H, M, M, 6 * c.mixtures + 1], final_act=False)
        # h_t = f([phi_x(x_t), phi_z(z_t)], h_{t-1})
        self.rnn = self._rnn_cell(Fx + Fz)
        # training only: p_aux(x_t | z_t) reads z_t alone (mean and pre-softplus sigma of dx, dy;
        # pen logit), so that --aux-weight makes z_t carry what the pen did (vrnn.model.add_aux_head)
        self.aux = _aux_head(Z, c.aux_hidden) if c.aux_hidden else None

    @property
    def latent_size(self) -> int:
        return self.config.latent

    # ----------------------------------------------------------- sub-terms
    def gaussian(self, stats: torch.Tensor):
        """Split ``(..., 2Z)`` into mean and sigma (softplus with a floor)."""
        mu, raw = stats.chunk(2, dim=-1)
        return mu, softplus_sigma(raw, self.config.z_sigma_floor)

    def posterior_pass(self, x: torch.Tensor, eps: torch.Tensor | None, state=None, active=None) -> _Posterior:
        """Run ``q`` and the recurrence over ``x (B, T, 3)``.

        ``eps (B, T, Z)``: standard normal noise for ``z = mu_q + sigma_q * eps``
        (``None``: use the posterior mean). ``state``: ``(h, c)`` to start from (zeros).
        ``active``: rows that end early are not stepped past their end (LSTM;
        :func:`vrnn.fused.active_rows`); their ended steps are zeros, real steps unchanged.
        """
        B, H = x.shape[0], self.config.hidden
        h, cell = state if state is not None else (x.new_zeros(B, H), x.new_zeros(B, H))
        if self.config.rnn == "lstm":
            return self._posterior_lstm(x, eps, h, cell, active)
        return self._posterior_autograd(x, eps, h, cell)

    def _posterior_autograd(self, x: torch.Tensor, eps: torch.Tensor | None, h, cell) -> _Posterior:
        """:meth:`posterior_pass` stepped with autograd (GRU; for an LSTM, the reference of the fused loop)."""
        c = self.config
        T, Fx = x.shape[1], c.x_features
        enc_in, enc_out, phi_z = self.encoder.first, self.encoder.last, self.phi_z.first
        M = enc_in.out_features
        enc_w, rnn_w = enc_in.weight, self.rnn.weight_ih
        floor = c.z_sigma_floor
        px = self.phi_x(x)  # (B, T, Fx)
        # x halves of the encoder's first layer and of the RNN input matrix, all T at once
        enc_x = F.linear(px, enc_w[:, :Fx], enc_in.bias)  # (B, T, M)
        gin_x = F.linear(px, rnn_w[:, :Fx], self.rnn.bias_ih)  # (B, T, G)
        # one matmul per step for everything that reads h_{t-1}
        w_h = torch.cat([enc_w[:, Fx:], self.rnn.weight_hh], 0)
        b_h = torch.cat([torch.zeros(M, device=x.device, dtype=x.dtype), self.rnn.bias_hh])
        w_h_t = w_h.t()
        w_z_t = rnn_w[:, Fx:].t()
        hw, hb = enc_out.weight, enc_out.bias
        zw, zb = phi_z.weight, phi_z.bias
        # GRU: autograd through the loop. unbind, not x[:, t]: indexing inside the loop costs a
        # full-size gradient per step
        enc_xs, gin_xs = enc_x.unbind(1), gin_x.unbind(1)
        eps_s = eps.unbind(1) if eps is not None else [None] * T
        loop_h, loop_z = _LoopWeight(w_h_t), _LoopWeight(w_z_t)
        hs, mus, sigmas, zs, pzs = [], [], [], [], []
        for t in range(T):
            hp_enc, hp_rnn = loop_h.addmm(b_h, h).split([M, w_h.shape[0] - M], 1)
            e = torch.relu(enc_xs[t] + hp_enc)
            mu, raw_s = F.linear(e, hw, hb).chunk(2, 1)  # q(z_t | x_t, h_{t-1})
            sigma = F.softplus(raw_s) + floor
            z = mu if eps_s[t] is None else torch.addcmul(mu, sigma, eps_s[t])
            pz = torch.relu(F.linear(z, zw, zb))
            hs.append(h)
            h, cell = self._rnn_update(loop_z.addmm(gin_xs[t], pz), hp_rnn, h, cell)
            mus.append(mu)
            sigmas.append(sigma)
            zs.append(z)
            pzs.append(pz)
        st = lambda v: torch.stack(v, 1)  # noqa: E731
        return _Posterior(h_prev=st(hs), mu=st(mus), sigma=st(sigmas), z=st(zs), phi_z=st(pzs), state=(h, cell))

    def _posterior_lstm(self, x: torch.Tensor, eps: torch.Tensor | None, h0, c0, active=None) -> _Posterior:
        """:meth:`posterior_pass` for an LSTM: the loop of ``vrnn/fused.py`` (time-major inside)."""
        c = self.config
        Fx, Z = c.x_features, c.latent
        enc_in, enc_out = self.encoder.first, self.encoder.last
        rnn, floor = self.rnn, c.z_sigma_floor
        gs = lstm_gate_scale(c.hidden, x)[:, None]  # the g gate rows doubled: one sigmoid for all gates
        px = self.phi_x(x.transpose(0, 1))  # (T, B, Fx)
        # everything that reads [phi_x(x_t), h_{t-1}]: one matmul per step, biases included
        w_xh = torch.cat([enc_in.weight, torch.cat([rnn.weight_ih[:, :Fx], rnn.weight_hh], 1) * gs], 0)
        b_x = torch.cat([enc_in.bias, (rnn.bias_ih + rnn.bias_hh) * gs[:, 0]])
        eps_tm = eps.transpose(0, 1) if eps is not None else None
        qb = enc_out.bias if eps is None else F.pad(floor * eps_tm, (0, Z)) + enc_out.bias
        hs, qo, z, pz, c_last = lstm_posterior_loop(px, qb, eps_tm, w_xh, b_x, enc_out.weight, self.phi_z.first.weight,
                                                    self.phi_z.first.bias, rnn.weight_ih[:, Fx:] * gs, h0, c0, active)
        mu = qo[..., :Z] if eps is None else qo[..., :Z] - floor * eps_tm
        sigma = softplus_sigma(qo[..., Z:], floor)
        bt = lambda v: v.transpose(0, 1)  # noqa: E731
        return _Posterior(h_prev=bt(hs[:-1]), mu=bt(mu), sigma=bt(sigma), z=bt(z), phi_z=bt(pz),
                          state=(hs[-1], c_last))

    def terms(self, x: torch.Tensor, eps: torch.Tensor | None, state=None, active=None) -> Terms:
        """All per-step terms: posterior pass, then prior, decoder, KL and NLL for all T
        (``state``: the recurrent ``(h, c)`` to start from; zeros; ``active``: see
        :meth:`posterior_pass`).

        Computed time-major, ``(T, B, .)``, as the fused loop returns its outputs: batch-major
        (transposed) inputs made every matmul copy them and every gradient copy back; the
        batch-major fields of the result are views.
        """
        q = self.posterior_pass(x, eps, state, active)
        tm = lambda v: v.transpose(0, 1)  # noqa: E731  (B, T, .) <-> (T, B, .), a view
        T, B = x.shape[1], x.shape[0]
        Fz = self.config.z_features
        h = tm(q.h_prev).reshape(T * B, -1)  # a view for the fused loop's output
        p1, d1 = self.prior.first, self.decoder.first
        # p(z_t | h_{t-1}); two matmuls read h_{t-1} (one merged one cost more in its split's backward)
        mu_p, sigma_p = self.gaussian(self.prior.last(torch.relu(F.linear(h, p1.weight, p1.bias))))
        # the decoder's first layer on [phi_z(z_t), h_{t-1}], without concatenating them
        a_d = torch.addmm(F.linear(h, d1.weight[:, Fz:], d1.bias), tm(q.phi_z).reshape(T * B, Fz), d1.weight[:, :Fz].t())
        raw = self.decoder.last(torch.relu(self.decoder.middle(torch.relu(a_d)))).view(T, B, -1)
        gmm = self.decode(raw)  # p(x_t | z_t, h_{t-1})
        mu_p, sigma_p = mu_p.view(T, B, -1), sigma_p.view(T, B, -1)
        kl_dims = gaussian_kl(tm(q.mu), tm(q.sigma), mu_p, sigma_p)
        latents = Latents(prior_mu=tm(mu_p), prior_sigma=tm(sigma_p), post_mu=q.mu, post_sigma=q.sigma, z=q.z,
                          kl_dims=tm(kl_dims))
        return Terms(nll=tm(gmm.nll(tm(x))), gmm=gmm.transpose01(), h_prev=q.h_prev, state=q.state, latents=latents)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        *,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        kl_weight: float = 1.0,
        free_bits: float = 0.0,
        free_bits_mode: str = "dim",
        aux_weight: float = 0.0,
    ) -> Output:
        """Negative ELBO of normalized offsets ``x (B, T, 3)`` with ``mask (B, T)``; the
        objective ``.loss`` applies ``kl_weight`` and free bits (:func:`free_bits_penalty`),
        and adds ``aux_weight`` times the auxiliary cost per point (:meth:`aux_nll`); the
        ELBO (``.elbo_loss``) never includes it."""
        if eps is None:
            eps = torch.randn(*x.shape[:2], self.config.latent, generator=generator, device=x.device, dtype=x.dtype)
        # a batch sorted longest first (the trainer's) steps each row only up to its end
        t = self.terms(x, eps, active=active_rows(mask) if self.config.rnn == "lstm" else None)
        out = _loss(t.latents.kl_dims, t.nll, mask, kl_weight, free_bits, terms=t, free_bits_mode=free_bits_mode)
        if aux_weight:
            if self.aux is None:
                raise ValueError("aux_weight needs an auxiliary head (vrnn.model.add_aux_head)")
            out.aux = self.aux_nll(t.latents.z, x) * _masks(mask)[1]
            out.loss = out.loss + aux_weight * out.aux.sum() / out.points
        return out

    def aux_nll(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)``: ``-log p_aux(x_t | z_t)`` of the auxiliary head, from ``z (B, T, Z)`` alone.

        An auxiliary cost in the spirit of Z-forcing (Goyal et al. 2017) and of the CVAE's
        bag-of-words loss (Zhao et al. 2017): ``z_t`` must tell what the pen did at step ``t``
        (a Gaussian on ``dx, dy``, a Bernoulli pen) without ``h_{t-1}``, so the latent cannot
        leave everything to the recurrence. Not part of the ELBO; inference never runs it.
        """
        out = self.aux(z)
        sigma = softplus_sigma(out[..., 2:4], self.config.xy_sigma_floor)
        nll_xy = -gaussian_log_prob(x[..., :2], out[..., :2], sigma).sum(-1)
        return nll_xy + F.binary_cross_entropy_with_logits(out[..., 4], x[..., 2], reduction="none")

    # ------------------------------------------------------------ generation
    def terms_state(self, x: torch.Tensor, eps: torch.Tensor | None) -> tuple:
        """The recurrent state ``(h, c)`` after reading ``x`` with the posterior."""
        return self.posterior_pass(x, eps).state

    def rollout(self, state, steps: int, noise: dict, temperature: float = 1.0, z_mode: str = "sample"):
        """Run the prior forward from ``state`` for ``steps`` steps: ``(n, steps, 3)`` normalized rows.

        Per step: ``z_t ~ p(z | h_{t-1})``, ``x_t ~ p(x | z_t, h_{t-1})``, ``h_t = f(x_t, z_t, h_{t-1})``;
        the three reads of ``h_{t-1}`` share one matmul. ``noise``: see ``vrnn.inference.rollout_noise``.
        """
        c = self.config
        Fx, Fz, K = c.x_features, c.z_features, c.mixtures
        prior_in, dec_in = self.prior.first, self.decoder.first
        M, Md = prior_in.out_features, dec_in.out_features
        h, cell = state
        # Functional weights: module calls cost more than the small ops they wrap.
        w_h = torch.cat([prior_in.weight, dec_in.weight[:, Fz:], self.rnn.weight_hh], 0).t()
        b_h = torch.cat([prior_in.bias, dec_in.bias, self.rnn.bias_hh])
        split_h = [M, Md, w_h.shape[1] - M - Md]
        pw, pb = self.prior.last.weight, self.prior.last.bias
        zw, zb = self.phi_z.first.weight, self.phi_z.first.bias
        w_dz = dec_in.weight[:, :Fz].t()
        d2w, d2b = self.decoder.middle.weight, self.decoder.middle.bias
        d4w, d4b = self.decoder.last.weight, self.decoder.last.bias
        x1w, x1b = self.phi_x.first.weight, self.phi_x.first.bias
        x2w, x2b = self.phi_x.last.weight, self.phi_x.last.bias
        w_ix, w_iz = self.rnn.weight_ih[:, :Fx].t(), self.rnn.weight_ih[:, Fx:].t()
        b_i = self.rnn.bias_ih
        tau = max(float(temperature), 1e-4)
        eps_z = (noise["eps_z"] * math.sqrt(tau)).unbind(1)
        gumbel = (noise["gumbel"] * tau).unbind(1)
        e = (noise["e"] * math.sqrt(tau)).unbind(1)
        pen_thr = (tau * torch.logit(noise["u_pen"])).unsqueeze(-1).unbind(1)
        floor = c.z_sigma_floor
        outs = []
        for t in range(steps):
            hp_p, hp_d, hp_r = torch.addmm(b_h, h, w_h).split(split_h, 1)
            mu, raw_s = F.linear(torch.relu(hp_p), pw, pb).chunk(2, 1)  # p(z_t | h_{t-1})
            z = mu if z_mode == "mean" else torch.addcmul(mu, F.softplus(raw_s) + floor, eps_z[t])
            pz = torch.relu(F.linear(z, zw, zb))
            d = torch.relu(torch.addmm(hp_d, pz, w_dz))
            raw = F.linear(torch.relu(F.linear(d, d2w, d2b)), d4w, d4b)  # p(x_t | z_t, h_{t-1})
            xt = sample_gmm_rows(raw, K, c.xy_sigma_floor, gumbel[t], e[t], pen_thr[t])
            px = torch.relu(F.linear(torch.relu(F.linear(xt, x1w, x1b)), x2w, x2b))
            gin = torch.addmm(torch.addmm(b_i, px, w_ix), pz, w_iz)
            h, cell = self._rnn_update(gin, hp_r, h, cell)
            outs.append(xt)
        return torch.stack(outs, 1)


class RNNGMM(_Base):
    """The RNN-GMM baseline: same recurrent size, no latent variables; exact likelihood."""

    def __init__(self, config: VRNNConfig | None = None):
        config = config or VRNNConfig(model="rnn")
        if config.model != "rnn":
            raise ValueError("RNNGMM needs config.model == 'rnn'")
        super().__init__(config)
        c = config
        # p(x_t | h_{t-1})
        self.decoder = MLP([c.hidden, c.mlp, c.mlp, 6 * c.mixtures + 1], final_act=False)
        # h_t = f(phi_x(x_t), h_{t-1}); a cuDNN-able full-sequence RNN
        rnn_cls = nn.LSTM if c.rnn == "lstm" else nn.GRU
        self.rnn = rnn_cls(c.x_features, c.hidden, batch_first=True)

    @property
    def latent_size(self) -> int:
        return 0

    def _torch_state(self, state: tuple):
        """Our state tuples as ``nn.LSTM`` / ``nn.GRU`` take them: ``(h, c)`` or ``h``, each ``(1, B, H)``."""
        return state if self.config.rnn == "lstm" else state[0]

    def run(self, x: torch.Tensor, state: tuple | None = None):
        """``(h (B, T, H), final state tuple)``: ``h[:, t] = h_t``."""
        if state is None:
            h0 = x.new_zeros(1, x.shape[0], self.config.hidden)
            state = (h0, h0.clone()) if self.config.rnn == "lstm" else (h0,)
        hs, final = self.rnn(self.phi_x(x), self._torch_state(state))
        return hs, final if isinstance(final, tuple) else (final,)

    def terms(self, x: torch.Tensor, eps=None) -> Terms:
        """Decoder and exact NLL at every step (``eps`` is ignored: there is no latent)."""
        B = x.shape[0]
        hs, final = self.run(x)
        h_prev = torch.cat([x.new_zeros(B, 1, self.config.hidden), hs[:, :-1]], 1)
        gmm = self.decode(self.decoder(h_prev))
        return Terms(nll=gmm.nll(x), gmm=gmm, h_prev=h_prev, state=final)

    def forward(self, x, mask, *, eps=None, generator=None, kl_weight: float = 1.0, free_bits: float = 0.0,
                free_bits_mode: str = "dim") -> Output:
        """Exact negative log-likelihood per scored point (``kl`` is zero)."""
        t = self.terms(x)
        return _loss(None, t.nll, mask, kl_weight, free_bits, terms=t)

    # ------------------------------------------------------------ generation
    def terms_state(self, x: torch.Tensor, eps=None) -> tuple:
        return self.run(x)[1]

    def rollout(self, state, steps: int, noise: dict, temperature: float = 1.0, z_mode: str = "sample"):
        """Sample ``x_t ~ p(x | h_{t-1})`` and step the RNN, ``steps`` times: ``(n, steps, 3)``."""
        st = self._torch_state(state)
        outs = []
        for t in range(steps):
            h = st[0][0] if self.config.rnn == "lstm" else st[0]
            xt = self.decode(self.decoder(h)).sample(noise["gumbel"][:, t], noise["e"][:, t], noise["u_pen"][:, t], temperature)
            _, st = self.rnn(self.phi_x(xt)[:, None], st)
            outs.append(xt)
        return torch.stack(outs, 1)


def free_bits_penalty(kl_dims: torch.Tensor, n: torch.Tensor, free_bits: float, mode: str = "dim") -> torch.Tensor:
    """The KL term of the objective with free bits (Kingma et al. 2016), summed over points.

    ``kl_dims (B, T, Z)`` (masked), ``n`` scored points. ``mode="dim"``: each dimension's
    mean KL per point counts as at least ``free_bits``, so every dimension gets its floor
    for free and, in practice, sits at it. ``mode="total"``: the summed rate per point
    counts as at least ``Z * free_bits``: the same free rate, which the model may spread
    over the dimensions as it likes (``docs/kl_study.md``: uneven, informative dimensions).
    """
    per_dim = kl_dims.sum((0, 1)) / n
    if mode == "dim":
        return torch.clamp(per_dim, min=free_bits).sum() * n
    if mode == "total":
        return torch.clamp(per_dim.sum(), min=free_bits * kl_dims.shape[-1]) * n
    raise ValueError(f"free_bits_mode must be 'dim' or 'total', not {mode!r}")


def _loss(kl_dims, nll, mask, kl_weight, free_bits, terms=None, free_bits_mode: str = "dim") -> Output:
    """Masked totals and the objective; ``kl_dims=None``: a model without latents."""
    kl_mask, nll_mask = _masks(mask)
    if kl_dims is None:
        kl_dims = nll.new_zeros(*nll.shape, 0)
    kl_dims = kl_dims * kl_mask.unsqueeze(-1)
    kl = kl_dims.sum(-1)
    nll = nll * nll_mask
    n = nll_mask.sum().clamp_min(1.0)
    kl_total, nll_total = kl.sum(), nll.sum()
    if free_bits > 0 and kl_dims.shape[-1] > 0:
        kl_pen = free_bits_penalty(kl_dims, n, free_bits, free_bits_mode)
    else:
        kl_pen = kl_total
    return Output(
        loss=(kl_weight * kl_pen + nll_total) / n,
        elbo_loss=(kl_total + nll_total) / n,
        kl=kl,
        nll=nll,
        kl_dims=kl_dims,
        points=n,
        terms=terms,
    )


def build_model(config: VRNNConfig) -> _Base:
    """The model class ``config.model`` names."""
    return VRNN(config) if config.model == "vrnn" else RNNGMM(config)


#: The auxiliary head's outputs: mean and pre-softplus sigma of dx and dy, and the pen logit.
AUX_OUT = 5
#: Hidden width of the auxiliary head that :func:`add_aux_head` gives a model without one.
AUX_HIDDEN = 64


def _aux_head(latent: int, hidden: int) -> MLP:
    return MLP([latent, hidden, AUX_OUT], final_act=False)


def add_aux_head(model: "VRNN", hidden: int = AUX_HIDDEN, seed: int = 0) -> "VRNN":
    """Give a VRNN without one the auxiliary head ``p_aux(x_t | z_t)`` (seeded init), in place;
    its config records ``aux_hidden``. A model that has one is returned as it is."""
    if model.config.model != "vrnn":
        raise ValueError("only a VRNN has a latent for an auxiliary head")
    if model.aux is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = _aux_head(model.config.latent, hidden)
        p = next(model.parameters())
        model.aux = head.to(device=p.device, dtype=p.dtype)
        model.config = replace(model.config, aux_hidden=hidden)
    return model


def copy_model(model: _Base, device=None) -> _Base:
    """An independent copy of ``model``: weights, config, normalizer, preprocessing and card
    (a plain ``copy.deepcopy``; inference caches are not part of a model). ``device``: move it."""
    clone = copy.deepcopy(model)
    return clone if device is None else clone.to(device)


def load_model(path=None, *, device=None) -> _Base:
    """Load a model saved by ``model.save`` or ``python -m vrnn.train``.

    ``path=None`` loads the bundled VRNN in ``pretrained/vrnn``. ``device=None`` picks
    CUDA when available, else CPU. Raises :class:`vrnn.CheckpointError` for anything that
    is not a valid checkpoint (missing, truncated or edited files, wrong shapes, pickles).
    """
    ck = read_checkpoint(path)
    try:
        config = VRNNConfig.from_dict(ck.config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{ck.folder / 'config.json'}: invalid config ({e})") from None
    model = build_model(config)
    ck.load_into(model)
    model.normalizer = ck.normalizer
    model.preprocess_config = ck.preprocess
    model.card = ck.card
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()
