"""A naive VRNN forward pass, everything inside the time loop.

This is how the most-copied PyTorch VRNN computes its loss: every sub-network and both
loss terms per step. It is kept as the reference the fast path is tested against
(same parameters, same noise, same loss) and as the baseline of ``bench/train_speed.py``.
"""

from __future__ import annotations

import torch

from .distributions import gaussian_kl
from .model import VRNN, Output, _loss


def naive_forward(model: VRNN, x: torch.Tensor, mask: torch.Tensor, eps: torch.Tensor) -> Output:
    """Loss of ``model`` on ``x (B, T, 3)``, stepping every term one time step at a time."""
    B, T, _ = x.shape
    H = model.config.hidden
    h, c = x.new_zeros(B, H), x.new_zeros(B, H)
    kls, nlls = [], []
    for t in range(T):
        px = model.phi_x(x[:, t])
        mu_p, sig_p = model.gaussian(model.prior(h))
        mu_q, sig_q = model.gaussian(model.encoder(torch.cat([px, h], -1)))
        z = mu_q + sig_q * eps[:, t]
        pz = model.phi_z(z)
        gmm = model.decode(model.decoder(torch.cat([pz, h], -1)))
        kls.append(gaussian_kl(mu_q, sig_q, mu_p, sig_p))
        nlls.append(gmm.nll(x[:, t]))
        if model.config.rnn == "lstm":
            h, c = model.rnn(torch.cat([px, pz], -1), (h, c))
        else:
            h = model.rnn(torch.cat([px, pz], -1), h)
    return _loss(torch.stack(kls, 1), torch.stack(nlls, 1), mask, 1.0, 0.0)


def naive_rollout(model: VRNN, state, steps: int, noise: dict, temperature: float = 1.0,
                  z_mode: str = "sample") -> torch.Tensor:
    """Prior rollout the usual way: every sub-network called per step on concatenated inputs.

    Same noise and same math as ``VRNN.rollout`` (the fast one shares the three reads of
    ``h_{t-1}`` in one matmul and folds the concatenations into split weights).
    ``z_mode="mean"``: ``z_t`` is the prior mean.
    """
    h, c = state
    outs = []
    s_tau = max(float(temperature), 1e-4) ** 0.5
    for t in range(steps):
        mu_p, sig_p = model.gaussian(model.prior(h))
        z = mu_p if z_mode == "mean" else mu_p + sig_p * s_tau * noise["eps_z"][:, t]
        pz = model.phi_z(z)
        gmm = model.decode(model.decoder(torch.cat([pz, h], -1)))
        xt = gmm.sample(noise["gumbel"][:, t], noise["e"][:, t], noise["u_pen"][:, t], temperature)
        inp = torch.cat([model.phi_x(xt), pz], -1)
        if model.config.rnn == "lstm":
            h, c = model.rnn(inp, (h, c))
        else:
            h = model.rnn(inp, h)
        outs.append(xt)
    return torch.stack(outs, 1)
