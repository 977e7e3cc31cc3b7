"""The VRNN's posterior time loop with an LSTM, forward and backward written out by hand.

Per step ``t``, time-major (``h, c = h_{t-1}, c_{t-1}``; ``W_xh``, ``b_x``: everything of
the encoder's first layer and of the LSTM gates that reads ``[phi_x(x_t), h_{t-1}]``,
biases included)::

    [a | u]    = W_xh [px[t] | h] + b_x   one matmul for both layers and both inputs
    e          = relu(a)                  encoder hidden layer
    [m | raw]  = W_q e + qb[t]            q(z_t | x_t, h_{t-1}): m = mu + floor * eps (see below)
    z          = m + softplus(raw) * eps  = mu + sigma * eps, sigma = softplus(raw) + floor
    pz         = relu(W_z z + b_z)        phi_z(z_t)
    u         += W_iz pz                  LSTM gates [i, f, 2g, o]
    s          = sigmoid(u);  tanh(g) = 2 s_g - 1
    c'         = s_f c + s_i tanh(g),  h' = s_o tanh(c')

The ``g`` rows of the LSTM weights come in doubled (:func:`lstm_gate_scale`), so one
sigmoid over the whole ``(B, 4H)`` block gives all four gates. The floor of
sigma rides in the per-step bias ``qb`` (``mu = m - floor * eps``), which saves an op per
step; the caller recovers ``mu`` and ``sigma`` for all steps at once.

Autograd would record ~25 nodes per step and replay them one by one. Here the forward
runs without recording into preallocated time-major buffers (kept between training
steps by :class:`_Workspace`: a fresh 20 MB buffer costs a page fault per 4 kB on
first touch, which made every elementwise write of the loop ~3x slower), and
:meth:`_LSTMPosteriorLoop.backward` is one Python loop of ~20 small ops per step over
the saved activations; the weight gradients are one large matmul each after the loop
(the per-step inputs and gradients already lie stacked in the buffers). Checked against
autograd through the naive loop (``vrnn/reference.py``): same loss, same gradients.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import torch
import torch.nn.functional as F

_threshold_backward = torch.ops.aten.threshold_backward.grad_input


def _storage_users(t: torch.Tensor) -> int:
    """How many tensors (views included) share ``t``'s storage, as PyTorch counts them."""
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


def _idle(t: torch.Tensor) -> bool:
    """Nothing but its Python object holds ``t``: no saved-for-backward reference to the tensor
    (``_use_count``) and no view of its storage, anywhere (``_storage_users``)."""
    return t._use_count() == _IDLE[0] and _storage_users(t) == _IDLE[1]


class _Workspace(threading.local):
    """The loop's big buffers, reused from one training step to the next (one pool per thread).

    A buffer is handed out again only when nothing but the pool holds it (:func:`_idle`):
    no pending backward saved it, no view of it is alive, so reuse can never overwrite live
    data. ``_IDLE`` holds the counts of an unshared tensor, measured at import, so the check
    does not depend on how this PyTorch version counts. Only buffers internal to the loop
    come from here: an autograd output (``qo``, ``z``, ``phi_z``) gets the backward node as
    its ``grad_fn``, so the pool would keep graphs alive, and a saved output is not counted.
    Used only on CPU while training (CUDA has its caching allocator), at most ``KEEP``
    buffers per shape and ``SHAPES`` shapes (batches are trimmed to their longest window,
    so the time length varies; the least recently used shape's buffers are let go).
    """

    KEEP = 3
    SHAPES = 24  # a training step takes ~7 shapes; room for about three batch lengths

    def __init__(self):
        self.pools: OrderedDict[tuple, list[torch.Tensor]] = OrderedDict()

    def take(self, like: torch.Tensor, taken: set, *shape: int) -> torch.Tensor:
        key = (shape, like.dtype, like.device)
        pool = self.pools.setdefault(key, [])
        self.pools.move_to_end(key)
        while len(self.pools) > self.SHAPES:
            self.pools.popitem(last=False)
        for buf in pool:
            if id(buf) not in taken and _idle(buf):
                taken.add(id(buf))
                return buf
        buf = like.new_empty(shape)
        if len(pool) < self.KEEP:
            pool.append(buf)
            taken.add(id(buf))
        return buf


_IDLE = (torch.empty(1)._use_count(), _storage_users(torch.empty(1)))
_WORKSPACE = _Workspace()


def _allocator(like: torch.Tensor, pooled: bool):
    """``new(*shape)``: an uninitialized buffer like ``like``, from the workspace when ``pooled``."""
    if not (pooled and like.device.type == "cpu"):
        return like.new_empty
    taken: set = set()
    return lambda *shape: _WORKSPACE.take(like, taken, *shape)


class _OneThread:
    """Run a block at one intra-op thread: the loop's per-step ops are too small to split
    (at 2 threads the whole VRNN step was measured 1.4x slower than at 1). Restores the count."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        if self.n > 1:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.n > 1:
            torch.set_num_threads(self.n)


def lstm_gate_scale(hidden: int, like: torch.Tensor) -> torch.Tensor:
    """``(4H,)``: 1 for the ``i, f, o`` gate rows, 2 for ``g`` (``tanh(g) = 2 sigmoid(2g) - 1``)."""
    s = like.new_ones(4 * hidden)
    s[2 * hidden : 3 * hidden] = 2.0
    return s


def _rows(views, active):
    """Per-step views cut to the rows still running at each step (``active``: see :func:`_run`)."""
    if active is None:
        return views
    return [v if n == v.shape[0] else v[:n] for v, n in zip(views, active)]


def _ended(active, B: int):
    """``(t0, t1, n)``: the runs of steps ``t0 <= t < t1`` at which rows ``n:`` have ended."""
    runs, t0 = [], 0
    for t in range(1, len(active) + 1):
        if t == len(active) or active[t] != active[t0]:
            if active[t0] < B:
                runs.append((t0, t, active[t0]))
            t0 = t
    return runs


def _run(px, qb, eps, w_xh, b_x, wq, wz, bz, wiz, h0, c0, pooled: bool = False, active=None):
    """The forward loop over time-major inputs; returns every buffer the backward needs.

    ``pooled``: take the buffers from :data:`_WORKSPACE` (training only). ``active``: ``T``
    ints, how many leading rows are still running at step ``t`` (non-increasing: the rows
    sorted longest first; ``None``: all of them). A row is stepped only while it runs; at
    its ended steps every output is zero, and so is its final state ``h_T, c_T``."""
    T, B, Fx = px.shape
    H = h0.shape[1]
    MG = w_xh.shape[0]
    M = MG - 4 * H
    Z = wq.shape[0] // 2
    Fz = wz.shape[0]
    # contiguous transposes: the per-step matmuls read them 200 times (~20% faster than views)
    w_xh_t, wq_t, wz_t, wiz_t = (w.t().contiguous() for w in (w_xh, wq, wz, wiz))
    new = _allocator(px, pooled)
    # xh[t] = [phi_x(x_t) | h_{t-1}]: the matmul's input, h written in place by the loop
    xh, cs, tcs, tgs = new(T + 1, B, Fx + H), new(T + 1, B, H), new(T, B, H), new(T, B, H)
    es, acts = new(T, B, M), new(T, B, 4 * H)
    qos, zs, pzs = px.new_empty(T, B, 2 * Z), px.new_empty(T, B, Z), px.new_empty(T, B, Fz)  # outputs: never pooled
    xh[:T, :, :Fx] = px
    xh[T, :, :Fx] = 0.0
    hs = xh[:, :, Fx:]
    hs[0], cs[0] = h0, c0
    # every per-step view made once, in C++ (unbind), not by indexing in the loop
    u = lambda v: v.unbind(0)  # noqa: E731
    xh_, hs_, cs_, tcs_, tgs_, es_, qos_, zs_, pzs_, acts_ = map(u, (xh, hs, cs, tcs, tgs, es, qos, zs, pzs, acts))
    m_, raw_ = u(qos[:, :, :Z]), u(qos[:, :, Z:])
    si_, sf_, sg_, so_ = (u(acts[:, :, k * H : (k + 1) * H]) for k in range(4))
    qb_ = u(qb) if qb.dim() == 3 else [qb] * T
    eps_ = u(eps) if eps is not None else None
    # per-step scratch, written again every step: a fresh (B, M + 4H) result per step went
    # back to the OS on free and page-faulted on the next step's first touch (~25% of the loop)
    hp, sp = px.new_empty(B, MG), px.new_empty(B, 2 * Z)
    minus_one, two = px.new_full((B, H), -1.0), px.new_full((B, H), 2.0)
    # the scratch buffers' views of rows :n, made once per n
    scratch = functools.cache(lambda n: (hp[:n], hp[:n, :M], hp[:n, M:], sp[:n], sp[:n, Z:], minus_one[:n], two[:n]))
    # each step's views of the rows still running (all rows without ``active``)
    xh_in, hs_out, cs_in, cs_out = _rows(xh_[:T], active), _rows(hs_[1:], active), _rows(cs_[:T], active), _rows(cs_[1:], active)
    tcs_, tgs_, es_, qos_, zs_, pzs_, acts_, m_, si_, sf_, sg_, so_ = (
        _rows(v, active) for v in (tcs_, tgs_, es_, qos_, zs_, pzs_, acts_, m_, si_, sf_, sg_, so_))
    qb_ = _rows(qb_, active) if qb.dim() == 3 else qb_
    eps_ = _rows(eps_, active) if eps_ is not None else None
    n = B
    with _OneThread():  # the per-step ops are too small to split between threads
        for t in range(T):
            if active is not None:
                n = active[t]
            hp_n, hp_a, hp_u, sp_n, sp_raw, m1_n, two_n = scratch(n)
            torch.addmm(b_x, xh_in[t], w_xh_t, out=hp_n)  # [a | u]
            e = torch.clamp_min(hp_a, 0.0, out=es_[t])
            torch.addmm(qb_[t], e, wq_t, out=qos_[t])
            if eps_ is not None:
                # softplus of the whole contiguous row: of the strided raw half it ran ~5x slower
                torch._C._nn.softplus(qos_[t], 1.0, 20.0, out=sp_n)  # F.softplus, with out=
                z = torch.addcmul(m_[t], sp_raw, eps_[t], out=zs_[t])
            else:
                z = zs_[t].copy_(m_[t])
            pz = torch.addmm(bz, z, wz_t, out=pzs_[t]).clamp_min_(0.0)
            torch.sigmoid(hp_u.addmm_(pz, wiz_t), out=acts_[t])
            tg = torch.addcmul(m1_n, sg_[t], two_n, out=tgs_[t])  # 2 s_g - 1, one op (a scalar operand costs 2x)
            c_new = torch.mul(sf_[t], cs_in[t], out=cs_out[t]).addcmul_(si_[t], tg)
            torch.mul(so_[t], torch.tanh(c_new, out=tcs_[t]), out=hs_out[t])
    if active is not None:
        # ended steps: zeros, so the batched layers after the loop (and the weight gradients
        # of the backward, which read these buffers whole) see finite values there
        for t0, t1, n in _ended(active, B):
            for buf in (es, qos, zs, pzs):
                buf[t0:t1, n:].zero_()
            hs[t0 + 1 : t1 + 1, n:].zero_()
        cs[T, active[-1]:].zero_()
    return xh, cs, tcs, tgs, es, qos, zs, pzs, acts


class _LSTMPosteriorLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, px, qb, eps, w_xh, b_x, wq, wz, bz, wiz, h0, c0, active):
        xh, cs, tcs, tgs, es, qos, zs, pzs, acts = _run(px, qb, eps, w_xh, b_x, wq, wz, bz, wiz, h0, c0, pooled=True,
                                                        active=active)
        ctx.save_for_backward(eps, w_xh, wq, wz, wiz, xh, cs, tcs, tgs, es, qos, zs, pzs, acts)
        ctx.per_step_qb = qb.dim() == 3
        ctx.active = active
        c_last = cs[-1]
        ctx.mark_non_differentiable(c_last)  # the final cell state: read by inference only
        return xh[:, :, px.shape[2]:], qos, zs, pzs, c_last

    @staticmethod
    def backward(ctx, g_hs, g_qos, g_zs, g_pzs, _g_c):
        eps, w_xh, wq, wz, wiz, xh, cs, tcs, tgs, es, qos, zs, pzs, acts = ctx.saved_tensors
        T, B, H = tcs.shape
        M = es.shape[2]
        Z = zs.shape[2]
        Fx = xh.shape[2] - H
        w_x, w_h = w_xh[:, :Fx].contiguous(), w_xh[:, Fx:].contiguous()  # a strided w_x: dpx ~1.6x slower
        g_hs, g_qos, g_zs, g_pzs = (g.contiguous() for g in (g_hs, g_qos, g_zs, g_pzs))
        new = _allocator(xh, pooled=True)
        d_hp = new(T, B, M + 4 * H)  # per step [d a | d u]: the gradient of W_xh [px | h] + b_x
        d_qo = xh.new_empty(T, B, 2 * Z)  # [d m | d raw]; the gradient of qb: never pooled
        d_az = new(T, B, pzs.shape[2])  # d (W_z z + b_z)
        if eps is not None:
            # d z / d raw = eps * softplus'(raw), all steps (sigmoid of a strided slice is ~10x slower)
            eps_sig = eps * torch.sigmoid(qos[:, :, Z:].contiguous())
        # per-step scratch, written again every step (fresh per-step results page-faulted; see _run)
        zeros, ones = xh.new_zeros(B, H), xh.new_ones(B, H)
        dtc, dtanh, dsig = xh.new_empty(B, H), xh.new_empty(B, H), xh.new_empty(B, 4 * H)
        d_pz, dz, d_e = xh.new_empty(B, pzs.shape[2]), xh.new_empty(B, Z), xh.new_empty(B, M)
        dh_bufs = (xh.new_empty(B, H), xh.new_empty(B, H))  # dh of this step and of the last
        dh = g_hs[T]
        dc = xh.new_zeros(B, H)  # updated in place; its last value is the gradient of c0
        active = ctx.active
        if active is not None:
            for t0, t1, n in _ended(active, B):  # ended steps: no gradient (the weight gradients read these whole)
                for buf in (d_hp, d_qo, d_az):
                    buf[t0:t1, n:].zero_()
        scratch = functools.cache(lambda n: tuple(b[:n] for b in (zeros, ones, dtc, dtanh, dsig, d_pz, dz, d_e, dc) + dh_bufs))
        u = lambda v: _rows(v.unbind(0), active)  # noqa: E731  each step's view of the rows still running
        acts_, tgs_, tcs_, cs_, es_, pzs_, d_az_, d_qo_, d_hp_ = map(u, (acts, tgs, tcs, cs[:T], es, pzs, d_az, d_qo, d_hp))
        si_, sf_, so_ = (u(acts[:, :, k * H : (k + 1) * H]) for k in (0, 1, 3))
        du_, dae_ = u(d_hp[:, :, M:]), u(d_hp[:, :, :M])
        dui_, duf_, dug_, duo_ = (u(d_hp[:, :, M + k * H : M + (k + 1) * H]) for k in range(4))
        dm_, draw_ = u(d_qo[:, :, :Z]), u(d_qo[:, :, Z:])
        g_hs_, g_zs_, g_pzs_ = u(g_hs[:T]), u(g_zs), u(g_pzs)
        g_m_, g_raw_ = u(g_qos[:, :, :Z]), u(g_qos[:, :, Z:])
        eps_sig_ = u(eps_sig) if eps is not None else None
        n = B
        with _OneThread():  # the per-step backward; the weight gradients below use every thread
            for t in range(T - 1, -1, -1):
                if active is not None:
                    n = active[t]
                zeros_n, ones_n, dtc_n, dtanh_n, dsig_n, d_pz_n, dz_n, d_e_n, dc_n, dh_a, dh_b = scratch(n)
                dh_n = dh if n == B else dh[:n]
                s, tg, tc = acts_[t], tgs_[t], tcs_[t]
                torch.mul(dh_n, so_[t], out=dtc_n)
                dc_n.addcmul_(dtc_n, torch.addcmul(ones_n, tc, tc, value=-1.0, out=dtanh_n))  # tanh'(c')
                # d [s_i, s_f, tanh g, s_o], written in place into the four gate blocks of du; the
                # g block already times d tanh(g) / d sigmoid(2g) = 2 (tanh(g) = 2 sigmoid(2g) - 1)
                torch.mul(dc_n, tg, out=dui_[t]), torch.mul(dc_n, cs_[t], out=duf_[t])
                torch.addcmul(zeros_n, dc_n, si_[t], value=2.0, out=dug_[t]), torch.mul(dh_n, tc, out=duo_[t])
                du = du_[t].mul_(torch.addcmul(s, s, s, value=-1.0, out=dsig_n))  # sigmoid' = s (1 - s)
                dc_n.mul_(sf_[t])
                torch.addmm(g_pzs_[t], du, wiz, out=d_pz_n)
                daz = _threshold_backward(d_pz_n, pzs_[t], 0.0, grad_input=d_az_[t])
                torch.addmm(g_zs_[t], daz, wz, out=dz_n)
                torch.add(dz_n, g_m_[t], out=dm_[t])
                if eps_sig_ is not None:
                    torch.addcmul(g_raw_[t], dz_n, eps_sig_[t], out=draw_[t])
                else:
                    draw_[t].copy_(g_raw_[t])
                _threshold_backward(torch.mm(d_qo_[t], wq, out=d_e_n), es_[t], 0.0, grad_input=dae_[t])
                torch.addmm(g_hs_[t], d_hp_[t], w_h, out=dh_b if t % 2 else dh_a)
                dh = dh_bufs[t % 2]
                n_before = B if active is None or t == 0 else active[t - 1]
                if n_before > n:  # rows whose last step is t - 1: d h_t is what reads h_t outside the loop
                    dh[n:n_before].copy_(g_hs[t, n:n_before])
        flat = lambda v: v.reshape(-1, v.shape[-1])  # noqa: E731
        d_hp_f = flat(d_hp)
        # both halves of the weight in one matmul; (X^T D)^T runs faster than D^T X here
        dw_xh = (flat(xh[:-1]).t() @ d_hp_f).t()
        col_ones = d_hp_f.new_ones(1, d_hp_f.shape[0])
        db_x = (col_ones @ d_hp_f).view(-1)  # column sums as a matmul: ~3x faster than sum(0) here
        dpx = (d_hp_f @ w_x).view(T, B, Fx) if ctx.needs_input_grad[0] else None
        dwq = flat(d_qo).t() @ flat(es)
        d_az_f = flat(d_az)
        dwz, dbz = d_az_f.t() @ flat(zs), (col_ones @ d_az_f).view(-1)
        dwiz = (flat(pzs).t() @ flat(d_hp[:, :, M:])).t()  # this order: ~1.7x faster
        dqb = d_qo if ctx.per_step_qb else d_qo.sum((0, 1))
        need = ctx.needs_input_grad
        return (dpx, dqb, None, dw_xh, db_x, dwq, dwz, dbz, dwiz, dh if need[9] else None, dc if need[10] else None,
                None)


def lstm_posterior_loop(px, qb, eps, w_xh, b_x, wq, wz, bz, wiz, h0, c0, active=None):
    """Run the loop above. Time-major inputs: ``px (T, B, Fx)`` (``phi_x(x_t)``), ``qb (T, B, 2Z)``
    or ``(2Z,)``, ``eps (T, B, Z)`` or ``None`` (``z`` = the posterior mean); ``nn.Linear``-shaped
    weights ``w_xh (M + 4H, Fx + H)`` with bias ``b_x (M + 4H,)`` (everything of the encoder's
    first layer and of the LSTM gates that reads ``[phi_x(x_t), h_{t-1}]``), ``wq (2Z, M)``,
    ``wz (Fz, Z)``, ``wiz (4H, Fz)`` (gate rows as :func:`lstm_gate_scale` scales them);
    ``h0, c0 (B, H)``.

    ``active``: ``T`` non-increasing ints, the number of leading rows still running at each
    step (:func:`active_rows`), or ``None``; a row is not stepped past its end, so a batch of
    uneven lengths costs its real points, not its padded ones. Its ended steps' outputs are
    zeros, and so is its final state; gradients arriving there are not propagated.

    Returns time-major ``hs (T + 1, B, H)`` (``h_0 .. h_T``, a view), ``qo (T, B, 2Z)``
    (``[m | raw]``), ``z (T, B, Z)``, ``phi_z (T, B, Fz)`` and the final cell state ``(B, H)``.
    """
    args = (px, qb, eps, w_xh, b_x, wq, wz, bz, wiz, h0, c0)
    if torch.is_grad_enabled() and any(a is not None and a.requires_grad for a in args):
        return _LSTMPosteriorLoop.apply(*args, active)
    xh, cs, _, _, _, qos, zs, pzs, _ = _run(*args, active=active)
    return xh[:, :, px.shape[2]:], qos, zs, pzs, cs[-1]


def active_rows(mask: torch.Tensor) -> list[int] | None:
    """For :func:`lstm_posterior_loop`: per step, how many leading rows of ``mask (B, T)`` still
    run. ``None`` (step every row) unless the mask is a prefix mask (each row ones, then
    zeros), its rows sorted longest first (the trainer's batches are), and some row ends early."""
    B, T = mask.shape
    if B == 0 or T == 0:
        return None
    lengths = mask.sum(1)
    if float(lengths[-1]) == T or not bool((lengths[:-1] >= lengths[1:]).all()):
        return None
    steps = torch.arange(T, device=mask.device, dtype=lengths.dtype)
    running = steps[:, None] < lengths[None, :]  # (T, B)
    if not torch.equal(running.t(), mask != 0):
        return None
    return running.sum(1).tolist()
