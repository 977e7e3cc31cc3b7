"""Render the README's sample grid: unconditional samples, then continuations of
held-out synthetic writers' words (prefix in black, each continuation in colour).

    python scripts/sample_grid.py [--model pretrained/vrnn] [--out docs/samples_vrnn.png]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import vrnn  # noqa: E402
from vrnn.render import PALETTE, render_inks_png  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default="docs/samples_vrnn.png")
    ap.add_argument("--temperature", type=float, default=0.7)
    args = ap.parse_args()
    model = vrnn.load_model(args.model, device="cpu")
    tau = args.temperature
    cells, captions = [], []
    for i, ink in enumerate(model.sample(n=4, steps=350, seed=1, temperature=tau)):
        cells.append(ink)
        captions.append(f"sample {i + 1} (from scratch, T={tau})")
    for ink in vrnn.synthetic_inks(4, seed=5, split="test"):
        prefix = vrnn.Ink(strokes=ink.strokes[: max(1, len(ink.strokes) // 2)])
        for j, cont in enumerate(model.continue_ink(prefix, n=2, steps=200, seed=0, temperature=tau)):
            cells.append([(prefix, "black"), (cont, PALETTE[j])])
            captions.append(f"{ink.writer}: prefix + continuation {j + 1}")
    render_inks_png(cells, args.out, cols=2, labels=captions)
    print(args.out)


if __name__ == "__main__":
    main()
