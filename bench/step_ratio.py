"""VRNN vs RNN-GMM optimizer step at the bundled sizes, side by side in one run.

One step = forward + backward + gradient clipping + Adam on a batch of ``--batch``
windows of ``--max-len`` points, the two models interleaved step by step (the machine is
shared and noisy), at 1 thread (the bundled recipe) and at 2. Prints each model's median
wall-clock step time and the ratio VRNN / RNN-GMM (goal: <= 1.5x), and beside it the ratio
of the fastest steps in process CPU time, which other processes on a shared machine
disturb far less.

    python bench/step_ratio.py [--steps 30] [--threads 1 2] [--z-features 16] [--latent-mlp 64]
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


def measure(threads: int, steps: int, batch: int, max_len: int, sizes: dict = BUNDLED) -> dict:
    torch.set_num_threads(threads)
    (_, v_step), (_, r_step) = make_step("vrnn", batch, max_len, sizes), make_step("rnn", batch, max_len, sizes)
    for _ in range(2):  # warm-up
        v_step(), r_step()
    wall = {"vrnn": [], "rnn": []}
    cpu = {"vrnn": [], "rnn": []}
    for _ in range(steps):
        for name, step in (("vrnn", v_step), ("rnn", r_step)):
            w0, c0 = time.perf_counter(), time.process_time()
            step()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    return {"wall": {k: statistics.median(v) for k, v in wall.items()}, "cpu": {k: min(v) for k, v in cpu.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per model and thread count")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--z-features", type=int, default=BUNDLED["z_features"], help="phi_z width of the VRNN")
    ap.add_argument("--latent-mlp", type=int, default=BUNDLED["latent_mlp"], help="prior/encoder width of the VRNN")
    args = ap.parse_args()
    sizes = dict(BUNDLED, z_features=args.z_features, latent_mlp=args.latent_mlp)
    v = build_model(VRNNConfig(model="vrnn", **sizes)).num_parameters()
    r = build_model(VRNNConfig(model="rnn", **sizes)).num_parameters()
    print(f"sizes {sizes}, batch {args.batch} x {args.max_len} points; "
          f"parameters VRNN {v:,} / RNN-GMM {r:,} = {v / r:.2f}x")
    for threads in args.threads:
        r = measure(threads, args.steps, args.batch, args.max_len, sizes)
        w, c = r["wall"], r["cpu"]
        print(f"threads {threads}: median wall VRNN {w['vrnn'] * 1000:6.1f} ms  RNN-GMM {w['rnn'] * 1000:6.1f} ms  "
              f"ratio {w['vrnn'] / w['rnn']:.2f}x (goal <= 1.5x) | fastest CPU time "
              f"{c['vrnn'] * 1000:.1f} / {c['rnn'] * 1000:.1f} ms = {c['vrnn'] / c['rnn']:.2f}x")


if __name__ == "__main__":
    main()
