"""The VRNN's posterior time loop with an LSTM, forward and backward written out by hand.

Per step ``t`` (``h, c = h_{t-1}, c_{t-1}``; ``enc_x``, ``gin_x``: the ``x`` halves of the
encoder's first layer and of the LSTM's input matrix, computed for all ``T`` beforehand)::

    [a_enc | a_rnn] = W_h h + b_h                 one matmul for both reads of h_{t-1}
    e               = relu(enc_x[t] + a_enc)      encoder hidden layer
    [mu | raw]      = W_q e + b_q                 q(z_t | x_t, h_{t-1})
    sigma           = softplus(raw) + floor
    z               = mu + sigma * eps[t]
    pz              = relu(W_z z + b_z)           phi_z(z_t)
    [i, f, g, o]    = gin_x[t] + W_iz pz + a_rnn  LSTM gates
    c'              = sig(f) c + sig(i) tanh(g),  h' = sig(o) tanh(c')

Autograd would record ~25 nodes per step and run them one by one in backward; here the
forward runs without recording into preallocated time-major buffers, and
:meth:`_LSTMPosteriorLoop.backward` is one Python loop of ~30 small ops per step over the
saved activations. Weight gradients are one large matmul each after the loop (the
per-step input/gradient pairs are already stacked in the buffers). Tested against
autograd through the naive loop (``vrnn/reference.py``): same loss, same gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_threshold_backward = torch.ops.aten.threshold_backward.grad_input


def _run(enc_x, gin_x, eps, w_h_t, b_h, wq_t, bq, wz_t, bz, wiz_t, h0, c0, floor: float):
    """The forward loop. Inputs are time-major: ``enc_x (T, B, M)``, ``gin_x (T, B, 4H)``,
    ``eps (T, B, Z)`` or ``None`` (``z`` = the posterior mean). Returns the buffers."""
    T, B, M = enc_x.shape
    H = h0.shape[1]
    Z = wq_t.shape[1] // 2
    Fz = wz_t.shape[1]
    new = enc_x.new_empty
    hs, cs, tcs = new(T + 1, B, H), new(T + 1, B, H), new(T, B, H)
    es, qos, sigmas, zs, pzs = new(T, B, M), new(T, B, 2 * Z), new(T, B, Z), new(T, B, Z), new(T, B, Fz)
    acts, tgs = new(T, B, 4 * H), new(T, B, H)
    hs[0], cs[0] = h0, c0
    for t in range(T):
        h, c = hs[t], cs[t]
        hp = torch.addmm(b_h, h, w_h_t)  # (B, M + 4H)
        e = torch.add(enc_x[t], hp[:, :M], out=es[t]).relu_()
        qo = torch.addmm(bq, e, wq_t, out=qos[t])
        mu, raw = qo[:, :Z], qo[:, Z:]
        sigma = torch.add(F.softplus(raw), floor, out=sigmas[t])
        z = torch.addcmul(mu, sigma, eps[t], out=zs[t]) if eps is not None else zs[t].copy_(mu)
        pz = torch.addmm(bz, z, wz_t, out=pzs[t]).relu_()
        gates = torch.add(gin_x[t], hp[:, M:]).addmm_(pz, wiz_t)
        s = torch.sigmoid(gates, out=acts[t])
        tg = torch.tanh(gates[:, 2 * H : 3 * H], out=tgs[t])
        c_new = torch.mul(s[:, H : 2 * H], c, out=cs[t + 1]).addcmul_(s[:, :H], tg)
        tc = torch.tanh(c_new, out=tcs[t])
        torch.mul(s[:, 3 * H :], tc, out=hs[t + 1])
    return hs, cs, tcs, es, qos, sigmas, zs, pzs, acts, tgs


def _outputs(hs, cs, qos, sigmas, zs, pzs):
    """``h_prev, mu, sigma, z, phi_z`` batch-major ``(B, T, .)`` views, and the final ``(h, c)``."""
    Z = sigmas.shape[2]
    bt = lambda v: v.transpose(0, 1)  # noqa: E731
    return bt(hs[:-1]), bt(qos[:, :, :Z]), bt(sigmas), bt(zs), bt(pzs), hs[-1], cs[-1]


class _LSTMPosteriorLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, enc_x, gin_x, eps, w_h, b_h, wq, bq, wz, bz, wiz, h0, c0, floor):
        enc_tm, gin_tm = enc_x.transpose(0, 1), gin_x.transpose(0, 1)
        eps_tm = eps.transpose(0, 1) if eps is not None else None
        bufs = _run(enc_tm, gin_tm, eps_tm, w_h.t(), b_h, wq.t(), bq, wz.t(), bz, wiz.t(), h0, c0, floor)
        hs, cs, tcs, es, qos, sigmas, zs, pzs, acts, tgs = bufs
        ctx.save_for_backward(eps_tm, w_h, wq, wz, wiz, hs, cs, tcs, es, qos, zs, pzs, acts, tgs)
        ctx.has_eps = eps is not None
        outs = _outputs(hs, cs, qos, sigmas, zs, pzs)
        ctx.mark_non_differentiable(*outs[5:])  # the final state: read by inference, never trained through
        return outs

    @staticmethod
    def backward(ctx, g_hprev, g_mu, g_sigma, g_z, g_pz, _g_hT, _g_cT):
        eps, w_h, wq, wz, wiz, hs, cs, tcs, es, qos, zs, pzs, acts, tgs = ctx.saved_tensors
        T, B, H = tcs.shape
        M = es.shape[2]
        Z = zs.shape[2]
        tm = lambda g: g.transpose(0, 1).contiguous() if g is not None else None  # noqa: E731
        g_hprev, g_mu, g_sigma, g_z, g_pz = map(tm, (g_hprev, g_mu, g_sigma, g_z, g_pz))
        new = hs.new_empty
        d_hp = new(T, B, M + 4 * H)  # per step: [d a_enc | d gates]; also the input gradients
        d_qo = new(T, B, 2 * Z)  # [d mu | d raw]
        d_az = new(T, B, pzs.shape[2])  # d (W_z z + b_z)
        sig_raw = torch.sigmoid(qos[:, :, Z:])  # softplus'(raw), all steps at once
        dh = hs.new_zeros(B, H)
        dc = hs.new_zeros(B, H)
        for t in range(T - 1, -1, -1):
            s, tg, tc = acts[t], tgs[t], tcs[t]
            si, sf, so = s[:, :H], s[:, H : 2 * H], s[:, 3 * H :]
            # LSTM cell: h' = so tanh(c'), c' = sf c + si tg
            dtc = dh * so
            dc = torch.addcmul(dc, dtc, 1.0 - tc * tc)
            dg = d_hp[t, :, M:]
            torch.mul(dc, tg, out=dg[:, :H])
            torch.mul(dc, cs[t], out=dg[:, H : 2 * H])
            torch.mul(dc, si, out=dg[:, 2 * H : 3 * H])
            torch.mul(dh, tc, out=dg[:, 3 * H :])
            sd = s * (1.0 - s)  # sigmoid'
            dg[:, : 2 * H].mul_(sd[:, : 2 * H])
            dg[:, 3 * H :].mul_(sd[:, 3 * H :])
            dg[:, 2 * H : 3 * H].mul_(1.0 - tg * tg)  # tanh'
            dc = dc * sf
            # phi_z and the reparameterization
            dpz = torch.addmm(g_pz[t], dg, wiz) if g_pz is not None else dg @ wiz
            daz = _threshold_backward(dpz, pzs[t], 0, grad_input=d_az[t])
            dz = torch.addmm(g_z[t], daz, wz) if g_z is not None else daz @ wz
            dq = d_qo[t]
            if g_mu is not None:
                torch.add(dz, g_mu[t], out=dq[:, :Z])
            else:
                dq[:, :Z].copy_(dz)
            dsig = dz * eps[t] if ctx.has_eps else torch.zeros_like(dz)
            if g_sigma is not None:
                dsig += g_sigma[t]
            torch.mul(dsig, sig_raw[t], out=dq[:, Z:])
            # encoder head, then both reads of h_{t-1}
            _threshold_backward(dq @ wq, es[t], 0, grad_input=d_hp[t, :, :M])
            dh = torch.addmm(g_hprev[t], d_hp[t], w_h) if g_hprev is not None else d_hp[t] @ w_h
        flat = lambda v: v.reshape(-1, v.shape[-1])  # noqa: E731
        d_hp_f = flat(d_hp)
        dw_h = d_hp_f.t() @ flat(hs[:-1])
        db_h = d_hp_f.sum(0)
        d_qo_f = flat(d_qo)
        dwq, dbq = d_qo_f.t() @ flat(es), d_qo_f.sum(0)
        d_az_f = flat(d_az)
        dwz, dbz = d_az_f.t() @ flat(zs), d_az_f.sum(0)
        dwiz = flat(d_hp[:, :, M:]).t() @ flat(pzs)
        d_enc = d_hp[:, :, :M].transpose(0, 1)
        d_gin = d_hp[:, :, M:].transpose(0, 1)
        need = ctx.needs_input_grad
        return (d_enc, d_gin, None, dw_h, db_h, dwq, dbq, dwz, dbz, dwiz,
                dh if need[10] else None, dc if need[11] else None, None)


def lstm_posterior_loop(enc_x, gin_x, eps, w_h, b_h, wq, bq, wz, bz, wiz, h0, c0, floor: float):
    """Run the loop above over batch-major ``enc_x (B, T, M)``, ``gin_x (B, T, 4H)``,
    ``eps (B, T, Z)`` or ``None``. Weights are ``nn.Linear``-shaped (``out x in``):
    ``w_h (M + 4H, H)``, ``wq (2Z, M)``, ``wz (Fz, Z)``, ``wiz (4H, Fz)``.

    Returns ``h_prev, mu, sigma, z, phi_z (B, T, .)`` and the final ``h, c (B, H)``.
    """
    if torch.is_grad_enabled():
        return _LSTMPosteriorLoop.apply(enc_x, gin_x, eps, w_h, b_h, wq, bq, wz, bz, wiz, h0, c0, floor)
    eps_tm = eps.transpose(0, 1) if eps is not None else None
    hs, cs, _, _, qos, sigmas, zs, pzs, _, _ = _run(enc_x.transpose(0, 1), gin_x.transpose(0, 1), eps_tm, w_h.t(),
                                                     b_h, wq.t(), bq, wz.t(), bz, wiz.t(), h0, c0, floor)
    return _outputs(hs, cs, qos, sigmas, zs, pzs)
