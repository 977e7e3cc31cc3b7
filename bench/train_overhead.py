"""How much of a training step is not the model: data loading and bookkeeping vs compute.

    python bench/train_overhead.py [--hidden 64 256] [--steps 40] [--data synthetic]

Runs the real training loop (:class:`vrnn.training.Trainer`) for a few steps per model size
and reads its timers:

- compute: forward + backward + gradient clipping + ``optimizer.step()``
- data: picking the batch's rows from the pre-padded window tensor, the LR/KL schedule
- bookkeeping: counters, metrics lines, progress reports
- overhead: everything in the loop that is not compute (data + bookkeeping + whatever the
  timers above miss: the per-epoch permutation, loop control), over compute

Validation and checkpoints are periodic and left out (none run here). Prints ratios
measured in this one run; the target is overhead < 10 %.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as python -m vrnn.train does (before torch loads)

import torch  # noqa: E402

from vrnn.datasets import load_train_valid  # noqa: E402
from vrnn.model import VRNNConfig  # noqa: E402
from vrnn.training import Trainer, TrainOptions  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="synthetic")
    p.add_argument("--synthetic-lines", type=int, default=200)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 256])
    p.add_argument("--model", choices=("vrnn", "rnn"), nargs="+", default=["vrnn", "rnn"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--log-every", type=int, default=10, help="steps per metrics line (1: the worst case)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    t0 = time.perf_counter()
    train, valid = load_train_valid(a.data, synthetic_lines=a.synthetic_lines)
    print(f"data: {len(train)} training inks loaded in {time.perf_counter() - t0:.1f} s (once per run, not per step)")
    print(f"{'model':<6}{'hidden':>7}{'steps':>7}{'compute s':>11}{'data s':>9}{'bookkeep s':>12}"
          f"{'overhead':>10}{'prep s':>8}")
    for kind in a.model:
        for hidden in a.hidden:
            config = VRNNConfig(model=kind, hidden=hidden, mlp=max(hidden, 32))
            options = TrainOptions(max_steps=a.steps, batch_size=a.batch_size, eval_every=10**9, checkpoint_every=0,
                                   progress_bar=True, log_every=a.log_every)
            with tempfile.TemporaryDirectory() as out:  # metrics.jsonl is written, as in a real run
                t0 = time.perf_counter()
                trainer = Trainer(train, valid[:4], config=config, options=options, out=out, log=lambda m: None)
                prep = time.perf_counter() - t0
                with contextlib.redirect_stderr(io.StringIO()):  # the progress bar runs, unseen
                    trainer.run()
            t = trainer.state.timing
            ratio = trainer.state.overhead_ratio()
            print(f"{kind:<6}{hidden:>7}{trainer.state.step:>7}{t['compute_s']:>11.2f}{t['data_s']:>9.3f}"
                  f"{t['bookkeeping_s']:>12.3f}{ratio:>9.2%}{prep:>8.1f}")
    print("overhead = (loop time - compute) / compute; prep = preprocessing + windows + model build, once per run")


if __name__ == "__main__":
    main()
