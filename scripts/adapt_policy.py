"""The app's default "Adapt to this hand" policy, measured: adapt only to prefixes of
``vrnn.app.compute.ADAPT_MIN_STEPS`` model steps or more, with the continuation benchmark
of ``vrnn.evaluate`` (the same held-out lines, seeds and temperature as the README's table).

    python scripts/adapt_policy.py                       # both sets, temperature 0.8, in parallel
    python scripts/adapt_policy.py --sets synthetic      # one of them

Prints, per set: the share of prefixes the policy adapts to, and the style score and size
ratio of the policy beside never and always adapting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "omniglot" / "strokes_background_small1.zip"
# name: (data, split, benchmark lines), as scripts/results_table.py runs them
SETS = {"synthetic": ("synthetic", "test", 160), "omniglot-lines": (f"omniglot-lines:{DATA}", "valid", 160)}


class Policy:
    """A model whose ``continue_ink`` adapts as the app's mode does (duck-typed for the benchmark)."""

    def __init__(self, model, mode: str, min_steps: int | None = None):
        from vrnn.app.compute import ADAPT_MIN_STEPS

        self.model, self.mode = model, mode
        self.min_steps = ADAPT_MIN_STEPS if min_steps is None else min_steps
        self.preprocess_config = model.preprocess_config
        self.adapted = 0
        self.calls = 0

    def continue_ink(self, ink, **kw):
        from vrnn.app.compute import adapt_steps

        n = adapt_steps(self.mode, self.model.trace(ink).steps, self.min_steps)
        self.calls += 1
        self.adapted += n > 0
        return self.model.continue_ink(ink, adapt=n, **kw)


def run_set(name: str, temperature: float, modes: list[str], min_steps: int | None) -> dict:
    from vrnn import load_model
    from vrnn.evaluate import continuation_lines_benchmark, load_eval_inks

    data, split, lines = SETS[name]
    model = load_model(device="cpu")
    # the synthetic benchmark draws its own lines; the Omniglot lines are read as results_table.py reads them
    inks = [] if name == "synthetic" else load_eval_inks(data, split=split, seed=0, synthetic_lines=1000)
    out = {}
    for mode in modes:
        policy = Policy(model, mode, min_steps)  # min_steps: another threshold, to choose it on validation lines
        r = continuation_lines_benchmark(policy, data, inks, lines, seed=0, temperature=temperature)
        out[mode] = {"style_score": r["style_score"], "size_ratio_median": r["size_ratio_median"],
                     "oracle": r["oracle_score"], "chance": r["chance_score"], "lines": r["lines"],
                     "adapted_share": policy.adapted / max(policy.calls, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--modes", nargs="+", choices=("off", "long", "always"), default=["off", "long", "always"])
    ap.add_argument("--min-steps", type=int, help="the threshold of 'long' (default: the app's ADAPT_MIN_STEPS)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(run_set(a.worker, a.temperature, a.modes, a.min_steps)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    extra = ["--modes", *a.modes] + (["--min-steps", str(a.min_steps)] if a.min_steps is not None else [])
    procs = {s: subprocess.Popen([sys.executable, __file__, "--worker", s, "--temperature", str(a.temperature), *extra],
                                 stdout=subprocess.PIPE, text=True, env=env) for s in a.sets}
    for s, p in procs.items():
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"error: {s} failed (exit {p.returncode})")
        for mode, r in json.loads(out).items():
            print(f"{s:15s} {mode:7s} adapted {r['adapted_share']:5.1%}  style {r['style_score']:.3f}  size ratio "
                  f"{r['size_ratio_median']:.2f}  (oracle {r['oracle']:.3f}, chance {r['chance']:.3f}, {r['lines']} lines)")


if __name__ == "__main__":
    main()
