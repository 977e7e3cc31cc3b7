"""Inference on a trained model: ``trace``, ``continue_ink``, ``sample``, ``evaluate``.

:class:`Inference` is the one home of inference: it holds the model (read, never
trained), reads its normalizer and preprocessing, and keeps the one cache of prepared
inks, recurrent states after a prefix and finished results. ``model.trace(...)`` and the
other model methods are thin delegates to ``Inference(model)`` that return private copies;
the app's :class:`vrnn.app.compute.ModelService` shares the cached results themselves.

The cache belongs to the model *object* but is not stored on it: a weak map from model
to cache keeps ``nn.Module``s plain (``copy.deepcopy`` and ``torch.save`` see no lock or
cache, and a copy starts with none). Every entry is keyed by :func:`ink_digest`, and the
cache empties itself when the model's weights (parameter versions), normalizer,
preprocessing or device change, so results are identical with or without it.

Adaptation (dynamic evaluation, Krause et al. 2018): :meth:`Inference.adapted` fine-tunes a
*copy* of the model on one ink's own bound for a few Adam steps, and ``continue_ink(...,
adapt=N)`` continues with that copy, so the continuation is written by a model that has
just practised the writer's hand. The model itself is never changed; ``trace`` always
reads the ink with the model as trained (its KL is what *that* model finds surprising).

Every method takes and returns inks in their own coordinates: an ink is cleaned and
scale-normalized on the way in (``vrnn.preprocess``) and model output is mapped back
with the ink's scale, so results are scale-equivariant. Randomness comes from an
explicit ``torch.Generator`` seeded by ``seed``: the same seed gives identical results.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .ink import Ink, ink_digest
from .preprocess import collate, prepare

#: Active-unit threshold of Burda et al. (2016) on ``Cov_x(E_q[z_u])``.
ACTIVE_UNIT_THRESHOLD = 0.01
INFORMATIVE_KL_THRESHOLD = 0.01  # nats per point in one latent dimension: the posterior departs from the prior
#: Adaptation defaults: 30 Adam steps at 1e-3 (about a second on one CPU thread) lifted the
#: style score on held-out synthetic writers from 0.728 to 0.811 at T 0.8 and from 0.672 to
#: 0.806 at T 1 (oracle 0.829); the README's "Adapting to the hand" has the other settings tried.
ADAPT_STEPS = 30
ADAPT_LR = 1e-3
MAX_ADAPT_STEPS = 500


class LRUCache:
    """A small thread-safe LRU map; ``get_or_compute`` runs ``compute`` outside the lock.

    Two threads asking for the same missing key may both compute it (harmless, the
    results are identical); one slow computation never blocks other keys.
    """

    def __init__(self, max_entries: int = 128):
        self.max_entries = int(max_entries)
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._stamp: Any = None

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key, default=None):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return default

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def get_or_compute(self, key, compute: Callable[[], Any]):
        sentinel = object()
        value = self.get(key, sentinel)
        if value is sentinel:
            value = compute()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def validate(self, stamp) -> None:
        """Empty the cache when ``stamp`` (what its entries were computed from) changed."""
        with self._lock:
            if stamp != self._stamp:
                self._data.clear()
                self._stamp = stamp


_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def model_cache(model) -> LRUCache:
    """The one inference cache of ``model`` (created on first use, dropped with the model)."""
    with _caches_lock:
        cache = _caches.get(model)
        if cache is None:
            cache = _caches[model] = LRUCache()
        return cache


def _model_stamp(model) -> tuple:
    """What cached results depend on besides their inputs: weights (tensor versions bump on
    every in-place update, e.g. an optimizer step or ``load_state_dict``), normalizer,
    preprocessing, device."""
    params = tuple((p.data_ptr(), p._version) for p in model.parameters())
    norm = model.normalizer
    return (params, tuple(norm.mean), tuple(norm.std), model.preprocess_config, str(model.device))


@dataclass
class Trace:
    """Per-step view of the model reading an ink (``T`` steps, ``Z`` latent dimensions).

    ``kl[0]`` is the start step's KL; ``nll[0]`` is 0 (the start point is given).
    For the RNN-GMM baseline ``Z = 0`` and ``kl`` is zero.
    """

    ink: Ink  # the cleaned ink: one point per step, in the source's coordinates
    offsets: np.ndarray  # (T, 3) stroke-3 rows of ``ink``
    points: np.ndarray  # (T, 2) absolute position of each step
    pen: np.ndarray  # (T,) 1 on the last point of each stroke
    prior_mu: np.ndarray  # (T, Z)  p(z_t | h_{t-1})
    prior_sigma: np.ndarray
    post_mu: np.ndarray  # (T, Z)  q(z_t | x_t, h_{t-1})
    post_sigma: np.ndarray
    z: np.ndarray  # (T, Z) the sample the recurrence used
    kl: np.ndarray  # (T,) nats
    kl_dims: np.ndarray  # (T, Z) nats, per latent dimension
    nll: np.ndarray  # (T,) nats, -log p(x_t | z_t, h_{t-1}) in normalized units
    scale: float  # the ink's scale (``vrnn.preprocess.ink_scale``)

    @property
    def steps(self) -> int:
        return len(self.kl)

    def to_csv(self) -> str:
        """One row per step: position, pen, KL, NLL, and every latent statistic."""
        Z = self.z.shape[1]
        cols = ["step", "x", "y", "dx", "dy", "pen_up", "kl", "nll"]
        blocks = [
            np.arange(self.steps)[:, None],
            self.points,
            self.offsets[:, :2],
            self.pen[:, None],
            self.kl[:, None],
            self.nll[:, None],
        ]
        for name in ("prior_mu", "prior_sigma", "post_mu", "post_sigma", "z", "kl_dims"):
            cols += [f"{name}_{i}" for i in range(Z)]
            blocks.append(getattr(self, name))
        table = np.concatenate([np.asarray(b, np.float64).reshape(self.steps, -1) for b in blocks], axis=1)
        lines = [",".join(cols)]
        lines += [",".join(f"{v:.6g}" for v in row) for row in table]
        return "\n".join(lines) + "\n"


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def rollout_noise(model, n: int, steps: int, seed: int) -> dict:
    """All the randomness of ``model.rollout`` for ``n`` sequences of ``steps`` steps, drawn
    up front from one seeded generator: ``eps_z (n, steps, Z)``, ``gumbel (n, steps, K)``,
    ``e (n, steps, 2)``, ``u_pen (n, steps)``."""
    g = _generator(seed)
    u = torch.rand(n, steps, model.config.mixtures, generator=g).clamp_(1e-12, 1 - 1e-7)
    noise = {
        "eps_z": torch.randn(n, steps, model.latent_size, generator=g),
        "gumbel": -torch.log(-torch.log(u)),
        "e": torch.randn(n, steps, 2, generator=g),
        "u_pen": torch.rand(n, steps, generator=g).clamp_(1e-7, 1 - 1e-7),
    }
    return {k: v.to(model.device) for k, v in noise.items()}


class Inference:
    """Inference on one trained model, with the model's one cache.

    ``Inference(model)`` is cheap: every ``Inference`` of the same model object shares
    that model's cache (:func:`model_cache`). Results come from the cache and are shared
    between callers: treat them as read-only (the model's own ``trace`` & co. hand out
    copies). Thread-safe: the model is only read.
    """

    def __init__(self, model):
        self.model = model
        self.cache = model_cache(model)

    @property
    def normalizer(self):
        return self.model.normalizer

    @property
    def preprocess_config(self):
        return self.model.preprocess_config

    @property
    def device(self) -> torch.device:
        return self.model.device

    def clear(self) -> None:
        """Forget every cached result of this model."""
        self.cache.clear()

    def _cached(self, key, compute: Callable[[], Any]):
        self.cache.validate(_model_stamp(self.model))
        return self.cache.get_or_compute(key, compute)

    # ---------------------------------------------------------------- helpers
    def prepared(self, ink: Ink, digest: str | None = None):
        """``(vrnn.preprocess.Prepared, x (T, 3) normalized tensor)`` of ``ink``, cached."""
        digest = digest or ink_digest(ink)

        def compute():
            prep = prepare(ink, self.preprocess_config)
            with torch.inference_mode(False):  # a normal tensor, usable with autograd too
                return prep, torch.from_numpy(self.normalizer.normalize(prep.offsets)).to(self.device)

        return self._cached(("prepared", digest), compute)

    def _prefix_eps(self, T: int, seed: int):
        Z = self.model.latent_size
        return torch.randn(1, T, Z, generator=_generator(seed)).to(self.device) if Z else None

    def prefix_state(self, ink: Ink, seed: int = 0, digest: str | None = None) -> tuple:
        """The recurrent state after the posterior has read ``ink`` (noise from ``seed``), cached."""
        digest = digest or ink_digest(ink)

        def compute():
            _, x = self.prepared(ink, digest)
            with torch.inference_mode():
                state = self.model.terms_state(x[None], self._prefix_eps(x.shape[0], seed))
            return tuple(s.detach() for s in state)

        return self._cached(("state", digest, int(seed)), compute)

    def _to_inks(self, gen: torch.Tensor, scale: float, start, **meta) -> list[Ink]:
        clamp = self.preprocess_config.clamp
        out = []
        for seq in gen.cpu().numpy():
            off = self.normalizer.denormalize(seq)
            off[:, :2] = np.clip(off[:, :2], -clamp, clamp) * scale
            off[:, 2] = (off[:, 2] > 0.5).astype(np.float64)
            out.append(Ink.from_offsets(off, start=tuple(start), **meta))
        return out

    # ------------------------------------------------------------ public API
    def trace(self, ink: Ink, *, seed: int = 0) -> Trace:
        """Run the posterior over ``ink``: prior and posterior of every ``z_t``, KL and NLL per step."""
        digest = ink_digest(ink)
        return self._cached(("trace", digest, int(seed)), lambda: self._trace(ink, int(seed), digest))

    @torch.inference_mode()
    def _trace(self, ink: Ink, seed: int, digest: str) -> Trace:
        self.model.eval()
        prep, x = self.prepared(ink, digest)
        T = x.shape[0]
        t = self.model.terms(x[None], self._prefix_eps(T, seed))
        self.cache.put(("state", digest, seed), tuple(s.detach() for s in t.state))
        nll = t.nll[0].clone()
        nll[0] = 0.0
        names = ("prior_mu", "prior_sigma", "post_mu", "post_sigma", "z", "kl_dims")
        if t.latents is not None:
            lat = {k: getattr(t.latents, k)[0].float().cpu().numpy() for k in names}
        else:
            lat = {k: np.zeros((T, 0), np.float32) for k in names}
        ink_off = prep.ink.to_offsets()
        return Trace(
            ink=prep.ink.copy(),  # the cached one stays untouched
            offsets=ink_off,
            points=prep.ink.points,
            pen=ink_off[:, 2].copy(),
            **lat,
            kl=t.latents.kl_dims[0].sum(-1).float().cpu().numpy() if t.latents is not None else np.zeros(T, np.float32),
            nll=nll.float().cpu().numpy(),
            scale=prep.scale,
        )

    def adapted(self, ink: Ink, *, steps: int = ADAPT_STEPS, lr: float = ADAPT_LR, seed: int = 0):
        """A copy of the model fine-tuned on ``ink`` (dynamic evaluation), cached.

        ``steps`` Adam steps at learning rate ``lr`` on the ink's own objective (the
        negative ELBO, the RNN-GMM's negative log-likelihood; no KL weight, no free bits),
        gradients clipped to norm 1, noise from ``seed``. The model is not changed. The
        copy is in eval mode; treat it as read-only (it is shared through the cache).
        """
        steps, lr = int(steps), float(lr)
        if not 0 <= steps <= MAX_ADAPT_STEPS:
            raise ValueError(f"adaptation steps must be between 0 and {MAX_ADAPT_STEPS}, not {steps}")
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"the adaptation learning rate must be a positive number, not {lr}")
        if steps == 0:
            return self.model
        digest = ink_digest(ink)
        return self._cached(("adapted", digest, steps, lr, int(seed)),
                            lambda: self._adapt(ink, digest, steps, lr, int(seed)))

    def _adapt(self, ink, digest, steps, lr, seed):
        from .model import copy_model  # the one way to copy a model (vrnn.model imports this module)

        _, x = self.prepared(ink, digest)
        model = copy_model(self.model)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr)
        g = torch.Generator(device=x.device)
        g.manual_seed(seed)
        x = x[None]
        mask = torch.ones(x.shape[:2], device=x.device)
        model.train()
        with torch.inference_mode(False), torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = model(x, mask, generator=g).loss
                if not torch.isfinite(loss):
                    break  # keep the last finite weights
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
        return model.eval().requires_grad_(False)

    def continue_ink(self, ink: Ink, *, n: int = 8, steps: int = 300, temperature: float = 1.0, seed: int = 0,
                     z_mode: str = "sample", adapt: int = 0) -> list[Ink]:
        """``n`` continuations of ``ink``, each holding only the new points.

        The posterior reads the whole prefix (the recurrent state has seen every
        prefix point), then the prior runs forward for ``steps`` steps in one batch of
        ``n``. ``z_mode="mean"`` uses the prior mean instead of a prior sample for ``z``.
        ``adapt``: first fine-tune a copy of the model on ``ink`` for that many steps
        (:meth:`adapted`, adaptation seed 0, so every ``seed`` continues with the same copy)
        and continue with the copy (0: the model as trained).
        The first new point is one offset away from the prefix's last point.
        """
        if z_mode not in ("sample", "mean"):
            raise ValueError("z_mode must be 'sample' or 'mean'")
        if adapt:  # one adapted copy per ink and step count: "More" (the next seed) does not adapt again
            model = self.adapted(ink, steps=adapt)
            return Inference(model).continue_ink(ink, n=n, steps=steps, temperature=temperature, seed=seed,
                                                 z_mode=z_mode)
        digest = ink_digest(ink)
        key = ("continue", digest, int(n), int(steps), float(temperature), int(seed), z_mode)
        return self._cached(key, lambda: self._continue(ink, digest, int(n), int(steps), float(temperature),
                                                        int(seed), z_mode))

    @torch.inference_mode()
    def _continue(self, ink, digest, n, steps, temperature, seed, z_mode) -> list[Ink]:
        self.model.eval()
        prep, _ = self.prepared(ink, digest)
        noise = rollout_noise(self.model, n, steps, seed)
        state = self.prefix_state(ink, seed, digest)
        state = tuple(s.expand(*s.shape[:-2], n, s.shape[-1]).contiguous() for s in state)
        gen = self.model.rollout(state, steps, noise, temperature, z_mode)
        return self._to_inks(gen, prep.scale, prep.ink.end_point(), label=None, writer=None)

    def sample(self, *, n: int = 4, steps: int = 400, temperature: float = 1.0, seed: int = 0,
               z_mode: str = "sample", scale: float = 1.0) -> list[Ink]:
        """Unconditional samples starting at the origin (``scale``: size of one model unit)."""
        if z_mode not in ("sample", "mean"):
            raise ValueError("z_mode must be 'sample' or 'mean'")
        key = ("sample", int(n), int(steps), float(temperature), int(seed), z_mode, float(scale))
        return self._cached(key, lambda: self._sample(int(n), int(steps), float(temperature), int(seed), z_mode,
                                                      float(scale)))

    @torch.inference_mode()
    def _sample(self, n, steps, temperature, seed, z_mode, scale) -> list[Ink]:
        self.model.eval()
        start = torch.from_numpy(self.normalizer.start_row).to(self.device)[None, None].expand(n, 1, 3)
        noise = rollout_noise(self.model, n, steps + 1, seed)
        eps = noise["eps_z"][:, :1] if (self.model.latent_size and z_mode == "sample") else None
        state = self.model.terms_state(start.contiguous(), eps)
        rest = {k: v[:, 1:] for k, v in noise.items()}
        gen = self.model.rollout(state, steps, rest, temperature, z_mode)
        gen = torch.cat([start, gen], 1)
        return self._to_inks(gen, scale, (0.0, 0.0))

    def evaluate(self, inks: Sequence[Ink], *, importance_samples: int = 0, batch_size: int = 32, seed: int = 0,
                 max_points: int = 1 << 17, particles: int = 0) -> dict:
        """Log-likelihood bounds in nats per scored point (higher is better).

        ``elbo_per_point``: the ELBO (analytic KL); with ``importance_samples = K > 0``
        also ``iwae_per_point``, the importance-weighted bound ``log mean_k w_k``
        (Burda et al. 2016), which is >= the ELBO and tightens as K grows. For the
        RNN-GMM baseline both keys hold the exact log-likelihood. ``*_per_sequence``:
        mean total per ink. ``kl_per_point`` is the KL term of the ELBO per scored point,
        ``kl_per_dim`` its share in each latent dimension (they sum to it). Active units
        (Burda et al. 2016): ``unit_activity[u]`` is the variance of the posterior mean
        ``E_q[z_t,u]`` over every real step of every ink, and a unit is active when it
        exceeds 0.01 (``active_units`` counts them; 0 and empty lists for the baseline).
        In a VRNN the prior moves with ``h`` too, so a unit whose posterior mean merely
        follows the prior mean is "active" while carrying nothing: ``informative_units``
        counts the dimensions whose KL exceeds 0.01 nats per point, where the posterior
        actually departs from the prior.
        ``max_points``: rows x steps per model call (memory); the noise is drawn once per
        batch of inks, so results do not depend on it.

        ``particles = P > 0`` also gives ``smc_per_point``: the log of the particle filter's
        marginal-likelihood estimate (sequential Monte Carlo with P particles proposed from
        ``q``, resampled whenever an ink's effective sample size falls under P / 2). Its
        expectation is a lower bound on ``log p(x)`` like the IWAE's (Jensen; the FIVO bound
        of Maddison et al. 2017, Le et al. 2018, Naesseth et al. 2018), but resampling keeps
        it tight on long sequences, where the IWAE with a filtering ``q`` is barely above the
        ELBO. ``resampled_per_sequence``: how often it resampled. The baseline: exact.
        """
        inks = list(inks)
        key = ("evaluate", tuple(ink_digest(i) for i in inks), int(importance_samples), int(batch_size), int(seed))
        res = self._cached(key, lambda: self._evaluate(inks, int(importance_samples), int(batch_size), int(seed),
                                                       int(max_points)))
        if particles:
            if particles < 0:
                raise ValueError(f"particles must be >= 0, got {particles}")
            smc_key = ("smc", key[1], int(particles), int(seed))
            res = {**res, **self._cached(smc_key, lambda: self._smc(inks, int(particles), int(seed), res))}
        return res

    def _sequences(self, inks) -> list[torch.Tensor]:
        """Each ink as the model reads it: normalized offsets ``(T, 3)``."""
        return [torch.from_numpy(self.normalizer.normalize(prepare(i, self.preprocess_config).offsets)) for i in inks]

    def _batches(self, seqs: list[torch.Tensor], bs: int):
        """Batches of ``bs`` sequences in length order: ``(idx, x, mask, nll_mask)``, the first
        step of each ink unscored (``nll_mask``)."""
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for b0 in range(0, len(order), bs):
            idx = order[b0 : b0 + bs]
            x, mask = collate([seqs[i].numpy() for i in idx])
            x, mask = x.to(self.device), mask.to(self.device)
            nll_mask = mask.clone()
            nll_mask[:, 0] = 0
            yield idx, x, mask, nll_mask

    @torch.inference_mode()
    def _smc(self, inks, P: int, seed: int, base: dict) -> dict:
        """:meth:`evaluate`'s particle filter: ``smc_*`` keys (the baseline's are its exact values)."""
        model = self.model
        out = {"particles": P}
        if not model.latent_size:
            return {**out, "smc_per_point": base["elbo_per_point"], "smc_per_sequence": base["elbo_per_sequence"],
                    "resampled_per_sequence": 0.0}
        model.eval()
        g = _generator(seed)
        seqs = self._sequences(inks)
        log_z, resampled, pts = np.zeros(len(seqs)), np.zeros(len(seqs)), np.zeros(len(seqs))
        log_p = math.log(P)
        for idx, x, mask, nll_mask in self._batches(seqs, max(1, 4096 // P)):  # particles x inks per step
            B, T = mask.shape
            pts[idx] = nll_mask.sum(1).cpu().numpy()
            xs = x.repeat(P, 1, 1)  # row p * B + b: particle p of ink b
            m, nm = mask.repeat(P, 1), nll_mask.repeat(P, 1)
            state = None
            log_w = torch.zeros(P, B, dtype=torch.float64, device=self.device)
            acc = torch.zeros(B, dtype=torch.float64, device=self.device)
            count = torch.zeros(B, device=self.device)
            cols = torch.arange(B, device=self.device)
            for t in range(T):
                eps = torch.randn(P * B, 1, model.latent_size, generator=g).to(self.device)
                tt = model.terms(xs[:, t : t + 1], eps, state)
                alpha = tt.latents.log_ratio[:, 0] * m[:, t] - tt.nll[:, 0] * nm[:, t]
                log_w += alpha.double().view(P, B)
                state = tt.state
                if t + 1 == T:
                    break
                # effective sample size per ink; resample where it is low and the ink goes on
                ess = torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))
                low = (ess < P / 2) & (mask[:, t + 1] > 0)
                if not bool(low.any()):
                    continue
                acc[low] += torch.logsumexp(log_w[:, low], 0) - log_p
                count[low] += 1
                ancestors = torch.arange(P, device=self.device).repeat(B, 1)  # (B, P)
                probs = torch.softmax(log_w[:, low].t(), 1).float().cpu()
                ancestors[low] = torch.multinomial(probs, P, replacement=True, generator=g).to(self.device)
                rows = (ancestors.t() * B + cols).reshape(-1)  # new particle p of ink b <- row of its ancestor
                state = tuple(s[rows] for s in state)
                log_w[:, low] = 0.0
            acc += torch.logsumexp(log_w, 0) - log_p
            log_z[idx] = acc.cpu().numpy()
            resampled[idx] = count.cpu().numpy()
        n_pts = float(pts.sum())
        return {**out, "smc_per_point": float(log_z.sum() / max(n_pts, 1)),
                "smc_per_sequence": float(log_z.mean()) if len(seqs) else 0.0,
                "resampled_per_sequence": float(resampled.mean()) if len(seqs) else 0.0}

    @torch.inference_mode()
    def _evaluate(self, inks, K, batch_size, seed, max_points) -> dict:
        model = self.model
        model.eval()
        g = _generator(seed)
        Z = model.latent_size
        seqs = self._sequences(inks)
        elbo = np.zeros(len(seqs))
        iwae = np.zeros(len(seqs))
        kl_tot = np.zeros(len(seqs))
        pts = np.zeros(len(seqs))
        kl_dims_tot = np.zeros(Z)  # KL per dimension, summed over scored inks and steps
        mu_n, mu_sum, mu_sq = 0.0, np.zeros(Z), np.zeros(Z)  # moments of E_q[z_t] over steps and inks
        reps = max(K, 1) if Z else 1
        rows = max(1, 4096 // max(1, max(len(s) for s in seqs)) if seqs else 1)
        bs = max(1, min(batch_size, rows))
        for idx, x, mask, nll_mask in self._batches(seqs, bs):
            B, T = mask.shape
            pts[idx] = nll_mask.sum(1).cpu().numpy()
            # all importance samples' noise at once: chunking below changes no number
            eps_all = torch.randn(reps * B, T, Z, generator=g).to(self.device) if Z else None
            chunk = max(1, max_points // (B * T))
            logw, elbos, kls = [], [], []
            for k0 in range(0, reps, chunk):
                kk = min(chunk, reps - k0)
                eps = eps_all[k0 * B : (k0 + kk) * B] if Z else None
                t = model.terms(x.repeat(kk, 1, 1), eps)
                m, nm = mask.repeat(kk, 1), nll_mask.repeat(kk, 1)
                nll = (t.nll * nm).sum(1)
                if t.latents is not None:
                    kl = (t.latents.kl_dims.sum(-1) * m).sum(1)
                    kl_d = t.latents.kl_dims * m.unsqueeze(-1)
                    log_ratio = (t.latents.log_ratio * m).sum(1)  # log p(z) - log q(z | x)
                    kl_dims_tot += kl_d.double().sum((0, 1)).cpu().numpy() / reps
                    if k0 == 0:  # active units from the first sample's pass: mu_q at every real step
                        mu = t.latents.post_mu[:B][mask.bool()].double()
                        mu_n += mu.shape[0]
                        mu_sum += mu.sum(0).cpu().numpy()
                        mu_sq += (mu * mu).sum(0).cpu().numpy()
                else:
                    kl = log_ratio = torch.zeros_like(nll)
                logw.append((log_ratio - nll).view(kk, B))
                elbos.append((-(kl + nll)).view(kk, B))
                kls.append(kl.view(kk, B))
            logw_t = torch.cat(logw, 0).double()
            elbo[idx] = torch.cat(elbos, 0).double().mean(0).cpu().numpy()
            kl_tot[idx] = torch.cat(kls, 0).double().mean(0).cpu().numpy()
            iwae[idx] = (torch.logsumexp(logw_t, 0) - math.log(logw_t.shape[0])).cpu().numpy()
        n_pts = float(pts.sum())
        res = {
            "model": model.config.model,
            "sequences": len(seqs),
            "points": int(n_pts),
            "elbo_per_point": float(elbo.sum() / max(n_pts, 1)),
            "elbo_per_sequence": float(elbo.mean()) if len(seqs) else 0.0,
            "kl_per_point": float(kl_tot.sum() / max(n_pts, 1)),
            "kl_per_dim": [float(v) for v in kl_dims_tot / max(n_pts, 1)],
        }
        # Active units (Burda et al. 2016): u is active when Cov_x(E_q[z_u]) > 0.01. Here the
        # population is every real step of every ink, E_q[z_t,u] the posterior mean mu_q.
        activity = mu_sq / max(mu_n, 1) - (mu_sum / max(mu_n, 1)) ** 2
        res["unit_activity"] = [float(max(v, 0.0)) for v in activity]
        res["active_units"] = int((activity > ACTIVE_UNIT_THRESHOLD).sum())
        res["informative_units"] = int((kl_dims_tot / max(n_pts, 1) > INFORMATIVE_KL_THRESHOLD).sum())
        if K > 0:
            res["importance_samples"] = K
            if not Z:
                iwae = elbo
            res["iwae_per_point"] = float(iwae.sum() / max(n_pts, 1))
            res["iwae_per_sequence"] = float(iwae.mean()) if len(seqs) else 0.0
        return res
