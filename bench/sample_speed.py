"""Latency of what the app does after pen-up: trace a 400-point ink + 8 continuations of 300 steps.

Compares the library's path (``model.trace`` + ``model.continue_ink``) with a naive
per-step sampler of the same model (``vrnn.reference.naive_rollout``) in the same run,
and prints the median latency (goal: >= 1.5x the naive one and < 150 ms on 2 cores).

    python bench/sample_speed.py [--model DIR] [--repeats 15]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import vrnn  # noqa: E402
from vrnn.inference import Inference, rollout_noise  # noqa: E402
from vrnn.reference import naive_rollout  # noqa: E402


def ink_of_points(n: int) -> vrnn.Ink:
    """A cursive-like ink that resamples to about ``n`` model steps."""
    model_spacing = 0.15
    t = np.linspace(0, 1, 4000)
    x = t * 40
    y = np.sin(t * 60) * 0.5 + np.sin(t * 7) * 0.1
    ink = vrnn.Ink(strokes=[np.stack([x, y], 1)])
    scale = vrnn.preprocess.ink_scale(ink)
    length = np.hypot(*np.diff(ink.strokes[0], axis=0).T).sum()
    k = length / (model_spacing * scale) / n
    return vrnn.Ink(strokes=[np.stack([x / k, y], 1)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint folder (default: the bundled model)")
    ap.add_argument("--repeats", type=int, default=15)
    # One thread: batch-8 steps are too small to split, and the app runs inference on one.
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        model = vrnn.load_model(args.model, device="cpu")
    except vrnn.CheckpointError as e:
        print(f"no bundled model ({e}); using an untrained default-size VRNN")
        model = vrnn.VRNN(vrnn.VRNNConfig())
    ink = ink_of_points(400)
    steps = model.trace(ink).steps
    inf = Inference(model)

    # A new seed every call: nothing of the trace or the continuations comes from the
    # cache (the prepared ink does, as in the app after the first read of an ink).
    def fast(seed: int):
        model.trace(ink, seed=seed)
        model.continue_ink(ink, n=8, steps=300, seed=seed)

    def naive(seed: int):
        with torch.inference_mode():
            model.trace(ink, seed=seed)
            _, x = inf.prepared(ink)
            state = model.terms_state(x[None], None)  # no state cache: the prefix is read again
            state = tuple(s.expand(8, -1).contiguous() for s in state)
            naive_rollout(model, state, 300, rollout_noise(model, 8, 300, seed))

    fast(-1), naive(-2)
    tf, tn = [], []
    for i in range(args.repeats):  # interleaved: the machine is shared and noisy
        t0 = time.perf_counter()
        fast(2 * i)
        tf.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        naive(2 * i + 1)
        tn.append(time.perf_counter() - t0)
    mf, mn = statistics.median(tf), statistics.median(tn)
    print(f"model: {model.config.model} hidden={model.config.hidden} latent={model.config.latent} "
          f"mixtures={model.config.mixtures}  prefix steps={steps}  threads={args.threads}")
    print(f"fast : median {mf * 1000:7.1f} ms  (min {min(tf) * 1000:.1f})   goal < 150 ms")
    print(f"naive: median {mn * 1000:7.1f} ms  (min {min(tn) * 1000:.1f})")
    print(f"speed-up naive/fast: {mn / mf:.2f}x  (goal >= 1.5x)")


if __name__ == "__main__":
    main()
