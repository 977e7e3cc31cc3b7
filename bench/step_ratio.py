"""VRNN vs RNN-GMM optimizer step at the bundled sizes, side by side in one run.

One step = forward + backward + gradient clipping + Adam on a batch of ``--batch``
windows of ``--max-len`` points, the two models interleaved step by step (the machine is
shared and noisy), at 1 thread (the bundled recipe) and at 2. Prints each model's median
wall-clock step time and the ratio VRNN / RNN-GMM (goal: <= 1.5x), and beside it the ratio
of the fastest steps in process CPU time, which other processes on a shared machine
disturb far less.

The default batches are full random windows. ``--mixture`` times the trainer's own step
(:meth:`vrnn.training.Trainer._train_step`: batch assembly, learning rate, forward,
backward, clipping, Adam) on the bundled recipe's data mixture (``scripts/train_bundled.sh``,
stage 2: synthetic lines, the npz, augmented composed Omniglot lines, the second stroke zip;
``--synthetic-lines`` fewer lines than the bundle's 20,000 for a quick start), in the
trainer's own order. Those batches are real: their lengths vary (single letters beside
200-point windows) and a batch is padded to its longest window, so about half of a batch's
points are padding. Both models see the same batches.

    python bench/step_ratio.py [--steps 30] [--threads 1 2] [--z-features 16] [--latent-mlp 64]
    python bench/step_ratio.py --mixture [--threads 1]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads wreck timings on a shared box
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from vrnn.model import VRNNConfig, build_model  # noqa: E402

BUNDLED = dict(hidden=192, mlp=192, latent=16, mixtures=20, latent_mlp=64, z_features=64)  # README: the bundled recipe


def make_step(kind: str, batch: int, max_len: int, sizes: dict, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(VRNNConfig(model=kind, **sizes)).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, max_len, 3, generator=g) * 0.5
    x[..., 2] = (torch.rand(batch, max_len, generator=g) < 0.1).float()
    x[:, 0] = 0.0
    mask = torch.ones(batch, max_len)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(x, mask, generator=g, free_bits=0.02)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return model, step


DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "omniglot")
MIXTURE = ("synthetic:0.45", f"{DATA}/omniglot.npz:0.25",  # scripts/train_bundled.sh, AUG_DATA
           f"omniglot-lines-augmented:{DATA}/strokes_background_small1.zip:0.2",
           f"{DATA}/strokes_background_small2.zip:0.1")


def mixture_steps(batch: int, max_len: int, sizes: dict, synthetic_lines: int):
    """Both models' trainer steps on the bundle's mixture, and the fill of the batches they see
    (real points over padded points). The ``k``-th call of either step takes batch ``k``."""
    from vrnn.datasets import load_mixture
    from vrnn.training import Trainer, TrainOptions

    mix = load_mixture(MIXTURE, synthetic_lines=synthetic_lines)
    opts = TrainOptions(batch_size=batch, max_len=max_len, lr=5e-4, warmup_steps=300, max_steps=10**6,
                        max_valid_windows=1, progress_bar=False, device="cpu")
    vrnn_only = dict(free_bits=0.02, free_bits_mode="total", kl_warmup_steps=0)
    steps, fill = {}, []
    for kind in ("vrnn", "rnn"):
        extra = {k: v for k, v in sizes.items() if kind == "vrnn" or k not in ("latent_mlp", "z_features")}
        trainer = Trainer(mix.train, mix.valid, config=VRNNConfig(model=kind, **extra),
                          options=opts.replace(**(vrnn_only if kind == "vrnn" else {})),
                          sources=mix.train_source, weights=mix.weights, valid_sources=mix.valid_source)
        order = trainer.epoch_order(0)
        batches = [order[i : i + batch] for i in range(0, len(order) - batch + 1, batch)]
        if not fill:
            lengths = trainer.train.lengths
            fill = [float(lengths[b].sum()) / (len(b) * float(lengths[b].max())) for b in batches]
        steps[kind] = _stepper(trainer, batches)
        if kind == "vrnn":
            steps["vrnn_padded"] = _stepper(trainer, batches, padded=True)
    return steps, fill


def _stepper(trainer, batches, padded: bool = False):
    """The trainer's step on ``batches`` in turn; ``padded``: as before the fused loop stopped
    stepping rows at their end (every row stepped to the batch's longest window)."""
    k = iter(batches)
    if not padded:
        return lambda: trainer._train_step(next(k), 0.0)

    def step():
        import vrnn.model

        keep = vrnn.model.active_rows
        vrnn.model.active_rows = lambda mask: None
        try:
            return trainer._train_step(next(k), 0.0)
        finally:
            vrnn.model.active_rows = keep

    return step


def measure(threads: int, steps: int, batch: int, max_len: int, sizes: dict = BUNDLED,
            mixture: int = 0) -> dict:
    torch.set_num_threads(threads)
    fill = None
    if mixture:
        fns, fill = mixture_steps(batch, max_len, sizes, mixture)
    else:
        (_, v_step), (_, r_step) = make_step("vrnn", batch, max_len, sizes), make_step("rnn", batch, max_len, sizes)
        fns = {"vrnn": v_step, "rnn": r_step}
    for _ in range(2):  # warm-up
        for step in fns.values():
            step()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(steps):
        for name, step in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            step()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    out = {"wall": {k: statistics.median(v) for k, v in wall.items()}, "cpu": {k: min(v) for k, v in cpu.items()},
           "total": {k: sum(v) for k, v in wall.items()}}
    if fill:
        out["fill"] = statistics.mean(fill[2 : 2 + steps])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per model and thread count")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--z-features", type=int, default=BUNDLED["z_features"], help="phi_z width of the VRNN")
    ap.add_argument("--latent-mlp", type=int, default=BUNDLED["latent_mlp"], help="prior/encoder width of the VRNN")
    ap.add_argument("--mixture", action="store_true",
                    help="the trainer's step on the bundle's data mixture (needs ../shared/data/omniglot)")
    ap.add_argument("--synthetic-lines", type=int, default=2000, help="with --mixture: generated training lines")
    args = ap.parse_args()
    if args.mixture and not os.path.isdir(DATA):
        raise SystemExit(f"error: --mixture needs {os.path.normpath(DATA)} (the Omniglot files)")
    sizes = dict(BUNDLED, z_features=args.z_features, latent_mlp=args.latent_mlp)
    v = build_model(VRNNConfig(model="vrnn", **sizes)).num_parameters()
    r = build_model(VRNNConfig(model="rnn", **sizes)).num_parameters()
    what = "the bundle's mixture, trainer steps" if args.mixture else "full random windows"
    print(f"sizes {sizes}, batch {args.batch} x {args.max_len} points ({what}); "
          f"parameters VRNN {v:,} / RNN-GMM {r:,} = {v / r:.2f}x")
    for threads in args.threads:
        r = measure(threads, args.steps, args.batch, args.max_len, sizes, args.synthetic_lines if args.mixture else 0)
        w, c, tot = r["wall"], r["cpu"], r["total"]
        fill = f" | batches {r['fill']:.0%} real points" if "fill" in r else ""
        if "vrnn_padded" in w:
            fill += (f"; VRNN stepping padded rows too: {w['vrnn_padded'] * 1000:.1f} ms, "
                     f"{w['vrnn_padded'] / w['vrnn']:.2f}x its step now")
        print(f"threads {threads}: median wall VRNN {w['vrnn'] * 1000:6.1f} ms  RNN-GMM {w['rnn'] * 1000:6.1f} ms  "
              f"ratio {w['vrnn'] / w['rnn']:.2f}x (goal <= 1.5x); total {tot['vrnn'] / tot['rnn']:.2f}x | fastest CPU "
              f"time {c['vrnn'] * 1000:.1f} / {c['rnn'] * 1000:.1f} ms = {c['vrnn'] / c['rnn']:.2f}x{fill}")


if __name__ == "__main__":
    main()
