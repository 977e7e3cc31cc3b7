"""The VRNN's posterior time loop with an LSTM, forward and backward written out by hand.

Per step ``t``, time-major (``h, c = h_{t-1}, c_{t-1}``; ``xin[t]``: everything of the
encoder's first layer and of the LSTM gates that does not depend on ``h`` or ``z``,
computed for all ``T`` beforehand, biases included)::

    [a | u]    = xin[t] + W_h h           one matmul for both reads of h_{t-1}
    e          = relu(a)                  encoder hidden layer
    [m | raw]  = W_q e + qb[t]            q(z_t | x_t, h_{t-1}): m = mu + floor * eps (see below)
    z          = m + softplus(raw) * eps  = mu + sigma * eps, sigma = softplus(raw) + floor
    pz         = relu(W_z z + b_z)        phi_z(z_t)
    u         += W_iz pz                  LSTM gates [i, f, 2g, o]
    s          = sigmoid(u);  tanh(g) = 2 s_g - 1
    c'         = s_f c + s_i tanh(g),  h' = s_o tanh(c'),  tanh(c') = 2 sigmoid(2c') - 1

The ``g`` rows of the LSTM weights come in doubled (:func:`lstm_gate_scale`), so one
sigmoid gives all four gates: on a CPU ``tanh`` costs several sigmoids. The floor of
sigma rides in the per-step bias ``qb`` (``mu = m - floor * eps``), which saves an op per
step; the caller recovers ``mu`` and ``sigma`` for all steps at once.

Autograd would record ~25 nodes per step and replay them one by one. Here the forward
runs without recording into preallocated time-major buffers, and
:meth:`_LSTMPosteriorLoop.backward` is one Python loop of ~20 small ops per step over
the saved activations; the weight gradients are one large matmul each after the loop
(the per-step inputs and gradients already lie stacked in the buffers). Checked against
autograd through the naive loop (``vrnn/reference.py``): same loss, same gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_threshold_backward = torch.ops.aten.threshold_backward.grad_input


def lstm_gate_scale(hidden: int, like: torch.Tensor) -> torch.Tensor:
    """``(4H,)``: 1 for the ``i, f, o`` gate rows, 2 for ``g`` (``tanh(g) = 2 sigmoid(2g) - 1``)."""
    s = like.new_ones(4 * hidden)
    s[2 * hidden : 3 * hidden] = 2.0
    return s


def _run(xin, qb, eps, w_h, wq, wz, bz, wiz, h0, c0):
    """The forward loop over time-major inputs; returns every buffer the backward needs."""
    T, B, MG = xin.shape
    H = h0.shape[1]
    M = MG - 4 * H
    Z = wq.shape[0] // 2
    Fz = wz.shape[0]
    w_h_t, wq_t, wz_t, wiz_t = w_h.t(), wq.t(), wz.t(), wiz.t()
    new = xin.new_empty
    hs, cs, tcs, tgs = new(T + 1, B, H), new(T + 1, B, H), new(T, B, H), new(T, B, H)
    es, qos, zs, pzs, acts = new(T, B, M), new(T, B, 2 * Z), new(T, B, Z), new(T, B, Fz), new(T, B, 4 * H)
    hs[0], cs[0] = h0, c0
    per_step_qb = qb.dim() == 3
    for t in range(T):
        hp = torch.addmm(xin[t], hs[t], w_h_t)  # (B, M + 4H): [a | u]
        e = torch.clamp_min(hp[:, :M], 0.0, out=es[t])
        qo = torch.addmm(qb[t] if per_step_qb else qb, e, wq_t, out=qos[t])
        if eps is not None:
            z = torch.addcmul(qo[:, :Z], F.softplus(qo[:, Z:]), eps[t], out=zs[t])
        else:
            z = zs[t].copy_(qo[:, :Z])
        pz = torch.addmm(bz, z, wz_t, out=pzs[t]).clamp_min_(0.0)
        u = hp[:, M:].addmm_(pz, wiz_t)
        s = torch.sigmoid(u, out=acts[t])
        tg = torch.add(s[:, 2 * H : 3 * H], s[:, 2 * H : 3 * H], out=tgs[t]).sub_(1.0)
        c_new = torch.mul(s[:, H : 2 * H], cs[t], out=cs[t + 1]).addcmul_(s[:, :H], tg)
        sc = torch.sigmoid(c_new * 2.0)
        tc = torch.add(sc, sc, out=tcs[t]).sub_(1.0)
        torch.mul(s[:, 3 * H :], tc, out=hs[t + 1])
    return hs, cs, tcs, tgs, es, qos, zs, pzs, acts


class _LSTMPosteriorLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xin, qb, eps, w_h, wq, wz, bz, wiz, h0, c0):
        hs, cs, tcs, tgs, es, qos, zs, pzs, acts = _run(xin, qb, eps, w_h, wq, wz, bz, wiz, h0, c0)
        ctx.save_for_backward(eps, w_h, wq, wz, wiz, hs, cs, tcs, tgs, es, qos, zs, pzs, acts)
        ctx.per_step_qb = qb.dim() == 3
        c_last = cs[-1]
        ctx.mark_non_differentiable(c_last)  # the final cell state: read by inference only
        return hs, qos, zs, pzs, c_last

    @staticmethod
    def backward(ctx, g_hs, g_qos, g_zs, g_pzs, _g_c):
        eps, w_h, wq, wz, wiz, hs, cs, tcs, tgs, es, qos, zs, pzs, acts = ctx.saved_tensors
        T, B, H = tcs.shape
        M = es.shape[2]
        Z = zs.shape[2]
        g_hs, g_qos, g_zs, g_pzs = (g.contiguous() for g in (g_hs, g_qos, g_zs, g_pzs))
        new = hs.new_empty
        d_hp = new(T, B, M + 4 * H)  # per step [d a | d u]: the gradient of xin
        d_qo = new(T, B, 2 * Z)  # [d m | d raw]
        d_az = new(T, B, pzs.shape[2])  # d (W_z z + b_z)
        if eps is not None:
            eps_sig = eps * torch.sigmoid(qos[:, :, Z:])  # d z / d raw = eps * softplus'(raw), all steps
        coef = lstm_gate_scale(H, hs)  # d tanh(g) / d (2g) = 2 s_g (1 - s_g)
        ones = hs.new_ones(B, H)
        dh = g_hs[T]
        dc = hs.new_zeros(B, H)
        for t in range(T - 1, -1, -1):
            s, tg, tc = acts[t], tgs[t], tcs[t]
            dtc = dh * s[:, 3 * H :]
            dc = torch.addcmul(dc, dtc, torch.addcmul(ones, tc, tc, value=-1.0))  # tanh'(c')
            dpre = torch.cat([dc * tg, dc * cs[t], dc * s[:, :H], dh * tc], 1)  # d [s_i, s_f, tanh g, s_o]
            sco = s * coef
            du = torch.mul(dpre, torch.addcmul(sco, sco, s, value=-1.0), out=d_hp[t, :, M:])
            dc = dc * s[:, H : 2 * H]
            daz = _threshold_backward(torch.addmm(g_pzs[t], du, wiz), pzs[t], 0.0, grad_input=d_az[t])
            dz = torch.addmm(g_zs[t], daz, wz)
            dq = d_qo[t]
            torch.add(dz, g_qos[t, :, :Z], out=dq[:, :Z])
            if eps is not None:
                torch.addcmul(g_qos[t, :, Z:], dz, eps_sig[t], out=dq[:, Z:])
            else:
                dq[:, Z:].copy_(g_qos[t, :, Z:])
            _threshold_backward(dq @ wq, es[t], 0.0, grad_input=d_hp[t, :, :M])
            dh = torch.addmm(g_hs[t], d_hp[t], w_h)
        flat = lambda v: v.reshape(-1, v.shape[-1])  # noqa: E731
        dw_h = flat(d_hp).t() @ flat(hs[:-1])
        dwq = flat(d_qo).t() @ flat(es)
        d_az_f = flat(d_az)
        dwz, dbz = d_az_f.t() @ flat(zs), d_az_f.sum(0)
        dwiz = flat(d_hp[:, :, M:]).t() @ flat(pzs)
        dqb = d_qo if ctx.per_step_qb else d_qo.sum((0, 1))
        need = ctx.needs_input_grad
        return (d_hp, dqb, None, dw_h, dwq, dwz, dbz, dwiz, dh if need[8] else None, dc if need[9] else None)


def lstm_posterior_loop(xin, qb, eps, w_h, wq, wz, bz, wiz, h0, c0):
    """Run the loop above. Time-major inputs: ``xin (T, B, M + 4H)``, ``qb (T, B, 2Z)`` or
    ``(2Z,)``, ``eps (T, B, Z)`` or ``None`` (``z`` = the posterior mean); ``nn.Linear``-shaped
    weights ``w_h (M + 4H, H)``, ``wq (2Z, M)``, ``wz (Fz, Z)``, ``wiz (4H, Fz)`` (gate rows
    as :func:`lstm_gate_scale` scales them); ``h0, c0 (B, H)``.

    Returns time-major ``hs (T + 1, B, H)`` (``h_0 .. h_T``), ``qo (T, B, 2Z)`` (``[m | raw]``),
    ``z (T, B, Z)``, ``phi_z (T, B, Fz)`` and the final cell state ``(B, H)``.
    """
    args = (xin, qb, eps, w_h, wq, wz, bz, wiz, h0, c0)
    if torch.is_grad_enabled() and any(a is not None and a.requires_grad for a in args):
        return _LSTMPosteriorLoop.apply(*args)
    hs, cs, _, _, _, qos, zs, pzs, _ = _run(*args)
    return hs, qos, zs, pzs, cs[-1]
