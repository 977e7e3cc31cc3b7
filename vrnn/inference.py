"""Inference on a trained model: ``trace``, ``continue_ink``, ``sample``, ``evaluate``.

Every method takes and returns inks in their own coordinates: an ink is cleaned and
scale-normalized on the way in (``vrnn.preprocess``) and model output is mapped back
with the ink's scale, so results are scale-equivariant. Randomness comes from an
explicit ``torch.Generator`` seeded by ``seed``: the same seed gives identical results.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from .ink import Ink
from .preprocess import collate, prepare


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


class _StateCache:
    """A small thread-safe LRU: recurrent states after a prefix keyed by (prefix, seed),
    and prepared inks keyed by their points.

    ``trace`` fills it and ``continue_ink`` on the same ink and seed reuses it (the app
    calls both after every pen-up), so the prefix is cleaned and read once. Results are
    identical with or without it.
    """

    def __init__(self, size: int = 16):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def key(x: torch.Tensor, seed: int):
        return (hashlib.sha1(x.detach().cpu().numpy().tobytes()).hexdigest(), int(seed), str(x.device))

    def __deepcopy__(self, memo) -> "_StateCache":
        return _StateCache(self.size)  # a copied model starts with an empty cache (and its own lock)

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value):
        with self.lock:
            self.items[key] = value if isinstance(value, _Prepared) else tuple(s.detach() for s in value)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class _Prepared(tuple):
    """``(Prepared, x)``; a tuple subclass so the cache stores it as it is."""

    def __new__(cls, prep, x):
        return super().__new__(cls, (prep, x))


class InferenceMixin:
    """Methods shared by ``VRNN`` and ``RNNGMM`` (they provide ``terms`` and ``rollout``)."""

    @property
    def _state_cache(self) -> _StateCache:
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = self.__dict__["_cache"] = _StateCache()
        return cache

    def _prefix_eps(self, T: int, seed: int):
        Z = self.config.latent if self.config.model == "vrnn" else 0
        return torch.randn(1, T, Z, generator=_generator(seed)).to(self.device) if Z else None

    def _prefix_state(self, x: torch.Tensor, seed: int):
        key = _StateCache.key(x, seed)
        state = self._state_cache.get(key)
        if state is None:
            state = self.terms_state(x[None], self._prefix_eps(x.shape[0], seed))
            self._state_cache.put(key, state)
        return state

    # ---------------------------------------------------------------- helpers
    def _prepare(self, ink: Ink):
        h = hashlib.sha1()
        for s in ink.strokes:
            h.update(np.ascontiguousarray(s).tobytes())
            h.update(b"|")
        key = ("prepared", h.hexdigest(), repr(self.preprocess_config), str(self.device))
        hit = self._state_cache.get(key)
        if hit is not None:
            return hit
        prep = prepare(ink, self.preprocess_config)
        x = torch.from_numpy(self.normalizer.normalize(prep.offsets)).to(self.device)
        self._state_cache.put(key, _Prepared(prep, x))
        return prep, x

    def _noise(self, n: int, steps: int, seed: int) -> dict:
        g = _generator(seed)
        Z = max(self.config.latent, 1) if self.config.model == "vrnn" else 0
        u = torch.rand(n, steps, self.config.mixtures, generator=g).clamp_(1e-12, 1 - 1e-7)
        noise = {
            "eps_z": torch.randn(n, steps, Z, generator=g),
            "gumbel": -torch.log(-torch.log(u)),
            "e": torch.randn(n, steps, 2, generator=g),
            "u_pen": torch.rand(n, steps, generator=g).clamp_(1e-7, 1 - 1e-7),
        }
        return {k: v.to(self.device) for k, v in noise.items()}

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
    @torch.inference_mode()
    def trace(self, ink: Ink, *, seed: int = 0) -> Trace:
        """Run the posterior over ``ink``: prior and posterior of every ``z_t``, KL and NLL per step."""
        self.eval()
        prep, x = self._prepare(ink)
        T = x.shape[0]
        Z = self.config.latent if self.config.model == "vrnn" else 0
        t = self.terms(x[None], self._prefix_eps(T, seed))
        st = t["state"]
        self._state_cache.put(_StateCache.key(x, seed), st if isinstance(st, tuple) else (st,))
        nll = t["nll"][0].clone()
        nll[0] = 0.0
        kl_dims = t["kl_dims"][0]
        empty = np.zeros((T, 0), np.float32)
        npy = lambda k: t[k][0].float().cpu().numpy() if Z else empty  # noqa: E731
        ink_off = prep.ink.to_offsets()
        return Trace(
            ink=prep.ink.copy(),  # the cached one stays untouched
            offsets=ink_off,
            points=prep.ink.points,
            pen=ink_off[:, 2].copy(),
            prior_mu=npy("mu_p"),
            prior_sigma=npy("sigma_p"),
            post_mu=npy("mu_q"),
            post_sigma=npy("sigma_q"),
            z=npy("z"),
            kl=kl_dims.sum(-1).float().cpu().numpy(),
            kl_dims=kl_dims.float().cpu().numpy(),
            nll=nll.float().cpu().numpy(),
            scale=prep.scale,
        )

    @torch.inference_mode()
    def continue_ink(
        self,
        ink: Ink,
        *,
        n: int = 8,
        steps: int = 300,
        temperature: float = 1.0,
        seed: int = 0,
        z_mode: str = "sample",
    ) -> list[Ink]:
        """``n`` continuations of ``ink``, each holding only the new points.

        The posterior reads the whole prefix (the recurrent state has seen every
        prefix point), then the prior runs forward for ``steps`` steps in one batch of
        ``n``. ``z_mode="mean"`` uses the prior mean instead of a prior sample for ``z``.
        The first new point is one offset away from the prefix's last point.
        """
        self.eval()
        if z_mode not in ("sample", "mean"):
            raise ValueError("z_mode must be 'sample' or 'mean'")
        prep, x = self._prepare(ink)
        noise = self._noise(n, steps, seed)
        state = self._prefix_state(x, seed)
        state = tuple(s.expand(*s.shape[:-2], n, s.shape[-1]).contiguous() for s in state)
        gen = self.rollout(state, steps, noise, temperature, z_mode)
        return self._to_inks(gen, prep.scale, prep.ink.end_point(), label=None, writer=None)

    @torch.inference_mode()
    def sample(self, *, n: int = 4, steps: int = 400, temperature: float = 1.0, seed: int = 0,
               z_mode: str = "sample", scale: float = 1.0) -> list[Ink]:
        """Unconditional samples starting at the origin (``scale``: size of one model unit)."""
        self.eval()
        start = torch.from_numpy(self.normalizer.start_row).to(self.device)[None, None].expand(n, 1, 3)
        noise = self._noise(n, steps + 1, seed)
        Z = self.config.latent if self.config.model == "vrnn" else 0
        eps = noise["eps_z"][:, :1] if (Z and z_mode == "sample") else None
        state = self.terms_state(start.contiguous(), eps)
        rest = {k: v[:, 1:] for k, v in noise.items()}
        gen = self.rollout(state, steps, rest, temperature, z_mode)
        gen = torch.cat([start, gen], 1)
        return self._to_inks(gen, scale, (0.0, 0.0))

    @torch.inference_mode()
    def evaluate(self, inks: list[Ink], *, importance_samples: int = 0, batch_size: int = 32, seed: int = 0) -> dict:
        """Log-likelihood bounds in nats per scored point (higher is better).

        ``elbo_per_point``: the ELBO (analytic KL); with ``importance_samples = K > 0``
        also ``iwae_per_point``, the importance-weighted bound ``log mean_k w_k``
        (Burda et al. 2016), which is >= the ELBO and tightens as K grows. For the
        RNN-GMM baseline both keys hold the exact log-likelihood. ``*_per_sequence``:
        mean total per ink.
        """
        self.eval()
        K = int(importance_samples)
        g = _generator(seed)
        seqs = [torch.from_numpy(self.normalizer.normalize(prepare(i, self.preprocess_config).offsets)) for i in inks]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        elbo = np.zeros(len(seqs))
        iwae = np.zeros(len(seqs))
        kl_tot = np.zeros(len(seqs))
        pts = np.zeros(len(seqs))
        latent = self.config.model == "vrnn"
        reps = max(K, 1) if latent else 1
        rows = max(1, 4096 // max(1, max(len(s) for s in seqs)) if seqs else 1)
        bs = max(1, min(batch_size, rows))
        for b0 in range(0, len(order), bs):
            idx = order[b0 : b0 + bs]
            x, mask = collate([seqs[i].numpy() for i in idx])
            x, mask = x.to(self.device), mask.to(self.device)
            nll_mask = mask.clone()
            nll_mask[:, 0] = 0
            pts[idx] = nll_mask.sum(1).cpu().numpy()
            logw, elbos, kls = [], [], []
            chunk = max(1, 2048 // (len(idx) * x.shape[1] // 64 + 1))
            for k0 in range(0, reps, chunk):
                kk = min(chunk, reps - k0)
                xr = x.repeat(kk, 1, 1)
                eps = torch.randn(kk * len(idx), x.shape[1], self.config.latent, generator=g).to(self.device) if latent else None
                t = self.terms(xr, eps)
                m = mask.repeat(kk, 1)
                nm = nll_mask.repeat(kk, 1)
                nll = (t["nll"] * nm).sum(1)
                kl = (t["kl_dims"].sum(-1) * m).sum(1)
                lr = (t["log_ratio"] * m).sum(1)
                logw.append((lr - nll).view(kk, len(idx)))
                elbos.append((-(kl + nll)).view(kk, len(idx)))
                kls.append(kl.view(kk, len(idx)))
            logw_t = torch.cat(logw, 0).double()
            elbo[idx] = torch.cat(elbos, 0).double().mean(0).cpu().numpy()
            kl_tot[idx] = torch.cat(kls, 0).double().mean(0).cpu().numpy()
            iwae[idx] = (torch.logsumexp(logw_t, 0) - math.log(logw_t.shape[0])).cpu().numpy()
        n_pts = float(pts.sum())
        res = {
            "model": self.config.model,
            "sequences": len(seqs),
            "points": int(n_pts),
            "elbo_per_point": float(elbo.sum() / max(n_pts, 1)),
            "elbo_per_sequence": float(elbo.mean()) if len(seqs) else 0.0,
            "kl_per_point": float(kl_tot.sum() / max(n_pts, 1)),
        }
        if K > 0:
            res["importance_samples"] = K
            if not latent:
                iwae = elbo
            res["iwae_per_point"] = float(iwae.sum() / max(n_pts, 1))
            res["iwae_per_sequence"] = float(iwae.mean()) if len(seqs) else 0.0
        return res
