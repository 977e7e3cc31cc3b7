"""How fast is the synthetic handwriting generator?

Prints lines/second and the time for ``--n`` lines (default 10,000), plus two ratios
measured in the same run on the same texts:

* against ``HersheyFonts.strokes_for_text``: the cost of merely laying the glyph
  polylines out with hershey-fonts itself (no styles, joins, smoothing or timing);
* against a naive baseline that resamples each of those polylines at constant speed
  with one ``np.interp`` per stroke (what a simple generator without kinematics does).

    python bench/synthetic_speed.py [--n 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vrnn.synthetic import random_text, synthetic_inks


def _hershey_layout(texts: list[str]) -> int:
    """Lay out every text with hershey-fonts; returns the number of points (so nothing is skipped)."""
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    font.load_default_font("cursive")
    return sum(len(stroke) for text in texts for stroke in font.strokes_for_text(text))


def _naive_resample(texts: list[str], step: float = 2.0) -> int:
    """Hershey layout, then constant-speed arc-length resampling with one np.interp per stroke."""
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    font.load_default_font("cursive")
    total = 0
    for text in texts:
        for stroke in font.strokes_for_text(text):
            p = np.asarray(stroke, dtype=np.float64)
            s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
            q = np.arange(0.0, s[-1] + step, step)
            resampled = np.column_stack([np.interp(q, s, p[:, 0]), np.interp(q, s, p[:, 1])])
            total += len(resampled)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="lines to generate")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    synthetic_inks(5, seed=args.seed)  # warm the font and writer caches
    t0 = time.perf_counter()
    inks = synthetic_inks(args.n, seed=args.seed)
    t_ours = time.perf_counter() - t0

    rng = np.random.default_rng(args.seed)
    texts = [random_text(rng) for _ in range(args.n)]
    t0 = time.perf_counter()
    _hershey_layout(texts)
    t_hershey = time.perf_counter() - t0
    t0 = time.perf_counter()
    _naive_resample(texts)
    t_naive = time.perf_counter() - t0

    points = sum(ink.num_points for ink in inks)
    chars = sum(len(ink.label.replace(" ", "")) for ink in inks)
    print(f"synthetic_inks({args.n}): {t_ours:.2f} s, {args.n / t_ours:.0f} lines/s, "
          f"{points / args.n:.0f} points/line, {points / chars:.1f} points/character")
    print(f"reference, hershey-fonts strokes_for_text on the same number of lines: {t_hershey:.2f} s "
          f"-> ours costs {t_ours / t_hershey:.2f}x")
    print(f"reference, strokes_for_text + constant-speed np.interp per stroke: {t_naive:.2f} s "
          f"-> ours costs {t_ours / t_naive:.2f}x")


if __name__ == "__main__":
    main()
