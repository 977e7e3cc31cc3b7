"""Training throughput of the VRNN (forward + backward + Adam) vs the naive per-step loop.

Both paths share parameters, inputs and noise (they compute the same loss, see
tests/test_model.py). Also measures this machine's matrix-multiply peak in the same run,
and prints the FLOP rate of each path as a fraction of it (FLOPs ~ 6 per parameter per
point: 2 forward, 4 backward).

    python bench/train_speed.py [--hidden 256 --latent 16 --mixtures 20 --batch 64 --steps 300]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads wreck timings on a shared box
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from vrnn.model import VRNN, VRNNConfig  # noqa: E402
from vrnn.reference import naive_forward  # noqa: E402


def matmul_peak(seconds: float = 2.0) -> float:
    """GFLOP/s of a large float32 matmul on all cores."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - t0) / 1e9


def time_path(step, iters: int) -> float:
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--mixtures", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300, help="time steps per sequence")
    ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = VRNN(VRNNConfig(hidden=args.hidden, latent=args.latent, mixtures=args.mixtures))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    B, T = args.batch, args.steps
    x = torch.randn(B, T, 3)
    x[..., 2] = (torch.rand(B, T) < 0.1).float()
    mask = torch.ones(B, T)
    eps = torch.randn(B, T, args.latent)

    def fast():
        opt.zero_grad(set_to_none=True)
        model(x, mask, eps=eps).loss.backward()
        opt.step()

    def naive():
        opt.zero_grad(set_to_none=True)
        naive_forward(model, x, mask, eps).loss.backward()
        opt.step()

    # Interleaved rounds, best of each: the machine is shared and noisy.
    peak, t_naive, t_fast = 0.0, float("inf"), float("inf")
    for _ in range(args.rounds):
        peak = max(peak, matmul_peak(1.0))
        t_naive = min(t_naive, time_path(naive, args.iters))
        t_fast = min(t_fast, time_path(fast, args.iters))
    params = model.num_parameters()
    flops_point = 6 * params
    pts = B * T
    for name, t in (("naive", t_naive), ("fast", t_fast)):
        rate = flops_point * pts / t / 1e9
        print(f"{name:5s}: {t * 1000:8.1f} ms/step  {pts / t:10.0f} points/s  {rate:7.2f} GFLOP/s  {rate / peak:6.1%} of peak")
    print(f"params {params:,}  FLOPs/point ~{flops_point / 1e6:.2f} M  matmul peak {peak:.1f} GFLOP/s  threads {args.threads}")
    print(f"speed-up fast/naive: {t_naive / t_fast:.2f}x  (goal >= 2x)")


if __name__ == "__main__":
    main()
