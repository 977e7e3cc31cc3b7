"""The densities of the VRNN-GMM, written to never NaN.

- diagonal Gaussians for ``p(z_t | h_{t-1})`` and ``q(z_t | x_t, h_{t-1})``: sigma is a
  softplus with a floor;
- the decoder's output ``p(x_t | z_t, h_{t-1})``: a mixture of ``K`` correlated bivariate
  Gaussians for ``(dx, dy)`` (log-sum-exp over components, correlation ``tanh`` scaled
  inside (-1, 1)) times a Bernoulli for ``pen_up`` (binary cross-entropy with logits).

Raw decoder output layout, last dimension ``6K + 1``:
``[pi logits (K) | mu_x (K) | mu_y (K) | sigma_x (K) | sigma_y (K) | rho (K) | pen logit]``.

Sampling temperature ``tau`` (one meaning everywhere in this project): mixture and pen
logits are divided by ``tau`` and every sigma (mixture components and the prior over
``z``) is multiplied by ``sqrt(tau)``. ``tau = 1`` samples the model as trained; smaller
values are tidier, larger ones wilder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)
RHO_MAX = 0.995  # |rho| bound: keeps 1 - rho^2 >= 0.01 in float32


def softplus_sigma(raw: torch.Tensor, floor: float) -> torch.Tensor:
    """A positive scale: ``softplus(raw) + floor``.

    ``raw`` is made contiguous first: it is usually a slice of a wider output, and on CPU
    softplus (like exp, tanh, sigmoid) of a strided slice ran ~10x slower than copy + softplus.
    """
    return F.softplus(raw.contiguous()) + floor


def gaussian_kl(mu_q, sigma_q, mu_p, sigma_p) -> torch.Tensor:
    """``KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2))`` elementwise (diagonal Gaussians)."""
    var_ratio = (sigma_q / sigma_p).pow(2)
    t = ((mu_q - mu_p) / sigma_p).pow(2)
    return 0.5 * (var_ratio + t - 1.0 - torch.log(var_ratio))


def gaussian_log_prob(x, mu, sigma) -> torch.Tensor:
    """``log N(x; mu, sigma^2)`` elementwise."""
    return -0.5 * (((x - mu) / sigma).pow(2) + LOG_2PI) - torch.log(sigma)


@dataclass
class GMMParams:
    """A bivariate Gaussian mixture plus a pen Bernoulli, each field ``(..., K)`` or ``(...)``."""

    logit_pi: torch.Tensor
    mu_x: torch.Tensor
    mu_y: torch.Tensor
    sigma_x: torch.Tensor
    sigma_y: torch.Tensor
    rho: torch.Tensor
    pen_logit: torch.Tensor

    @classmethod
    def from_raw(cls, raw: torch.Tensor, mixtures: int, sigma_floor: float) -> "GMMParams":
        K = mixtures
        pi, mx, my, sx, sy, r = raw[..., : 6 * K].split(K, dim=-1)
        return cls(
            logit_pi=pi,
            mu_x=mx,
            mu_y=my,
            sigma_x=softplus_sigma(sx, sigma_floor),
            sigma_y=softplus_sigma(sy, sigma_floor),
            rho=RHO_MAX * torch.tanh(r.contiguous()),  # contiguous: see softplus_sigma
            pen_logit=raw[..., 6 * K],
        )

    def transpose01(self) -> "GMMParams":
        """The same mixture with the first two dimensions of every field swapped (views)."""
        return GMMParams(*(getattr(self, f.name).transpose(0, 1) for f in fields(self)))

    def log_prob_xy(self, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """``log p(dx, dy)`` under the mixture; ``dx, dy`` shaped like ``pen_logit``."""
        zx = (dx.unsqueeze(-1) - self.mu_x) / self.sigma_x
        zy = (dy.unsqueeze(-1) - self.mu_y) / self.sigma_y
        one_m_r2 = 1.0 - self.rho.pow(2)
        quad = (zx.pow(2) + zy.pow(2) - 2.0 * self.rho * zx * zy) / (2.0 * one_m_r2)
        log_n = -LOG_2PI - torch.log(self.sigma_x) - torch.log(self.sigma_y) - 0.5 * torch.log(one_m_r2) - quad
        log_pi = torch.log_softmax(self.logit_pi, dim=-1)
        return torch.logsumexp(log_pi + log_n, dim=-1)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """``-log p(x)`` for stroke-3 rows ``x (..., 3)``: mixture for dx, dy + Bernoulli pen."""
        pen = F.binary_cross_entropy_with_logits(self.pen_logit, x[..., 2], reduction="none")
        return pen - self.log_prob_xy(x[..., 0], x[..., 1])

    def sample(self, gumbel, e, u_pen, temperature: float = 1.0) -> torch.Tensor:
        """Draw ``(..., 3)`` rows from pre-drawn noise (reproducible, batched).

        ``gumbel (..., K)``: standard Gumbel noise (the component is
        ``argmax(logit_pi / tau + gumbel)``); ``e (..., 2)``: standard normals;
        ``u_pen (...)``: uniforms (pen up when ``u_pen < sigmoid(pen_logit / tau)``).
        """
        tau = max(float(temperature), 1e-4)
        k = (self.logit_pi / tau + gumbel).argmax(-1, keepdim=True)
        g = lambda t: t.gather(-1, k).squeeze(-1)  # noqa: E731
        s = math.sqrt(tau)
        sx, sy, rho = g(self.sigma_x) * s, g(self.sigma_y) * s, g(self.rho)
        e1, e2 = e[..., 0], e[..., 1]
        dx = g(self.mu_x) + sx * e1
        dy = g(self.mu_y) + sy * (rho * e1 + torch.sqrt(1.0 - rho * rho) * e2)
        pen = (u_pen < torch.sigmoid(self.pen_logit / tau)).to(dx.dtype)
        return torch.stack([dx, dy, pen], dim=-1)


def sample_gmm_rows(raw, K: int, sigma_floor: float, gumbel_tau, e_scaled, pen_thr):
    """Fast path of :meth:`GMMParams.sample` on raw decoder output ``(n, 6K + 1)``.

    Noise comes pre-transformed for temperature ``tau``: ``gumbel_tau = tau * gumbel``,
    ``e_scaled = sqrt(tau) * e``, ``pen_thr = tau * logit(u_pen)``. Only the chosen
    component's parameters are transformed (softplus, tanh): fewer ops per step.
    """
    n = raw.shape[0]
    k = (raw[:, :K] + gumbel_tau).argmax(-1)
    p = raw[:, : 6 * K].view(n, 6, K).gather(2, k.view(n, 1, 1).expand(n, 6, 1)).squeeze(2)
    mu, sig = p[:, 1:3], F.softplus(p[:, 3:5]) + sigma_floor
    rho = RHO_MAX * torch.tanh(p[:, 5:6])
    e1, e2 = e_scaled[:, 0:1], e_scaled[:, 1:2]
    corr = torch.cat([e1, rho * e1 + torch.sqrt(1.0 - rho * rho) * e2], 1)
    pen = (raw[:, 6 * K :] > pen_thr).to(raw.dtype)
    return torch.cat([torch.addcmul(mu, sig, corr), pen], 1)
