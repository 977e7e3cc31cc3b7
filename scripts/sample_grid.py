"""Render the README's sample grid: samples from scratch, then continuations of held-out
prefixes of every kind the app sees (prefix in black, each continuation in colour):

- printed words by a mouse writer and joined cursive by a pen writer (synthetic ``test``
  writers, never trained on), written the way the app's canvas records them;
- a single digit and a number;
- a real UJI character and the first half of a line of real Omniglot Latin letters by a
  held-out drawer (when ``../shared/data`` is present).

    python scripts/sample_grid.py [--model pretrained/vrnn] [--out docs/samples_vrnn.png] [--adapt 30]

``--adapt N``: continue each prefix with a copy of the model fine-tuned on it for ``N``
steps (``vrnn.inference.Inference.adapted``), as the app's "Adapt to this hand" does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vrnn  # noqa: E402
from vrnn.datasets import load_eval_inks  # noqa: E402
from vrnn.render import PALETTE, render_inks_png  # noqa: E402
from vrnn.style import split_at_middle_lift  # noqa: E402
from vrnn.synthetic import PRINT_FONTS, generate_line, writer_style, writers_in_split  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def _writer(printed: bool, device: str) -> int:
    """The first synthetic ``test`` writer who prints (or joins) and uses ``device``."""
    for w in writers_in_split("test"):
        s = writer_style(w)
        if (s.font in PRINT_FONTS) == printed and s.device == device:
            return w
    raise SystemExit(f"no test writer with printed={printed}, device={device}")


def prefixes() -> list[tuple[str, vrnn.Ink]]:
    """(caption, prefix) for every row of continuations."""
    rng = lambda k: np.random.default_rng([7, k])  # noqa: E731
    mouse_print, pen_cursive = _writer(True, "mouse"), _writer(False, "pen")
    rows = [
        (f"print, mouse (syn-{mouse_print:04d}): 'the'", generate_line("the", writer_style(mouse_print), rng(0))),
        (f"cursive, pen (syn-{pen_cursive:04d}): 'hello'", generate_line("hello", writer_style(pen_cursive), rng(1))),
        (f"digit, mouse (syn-{mouse_print:04d}): '3'", generate_line("3", writer_style(mouse_print), rng(2))),
        (f"number, pen (syn-{pen_cursive:04d}): '2026'", generate_line("2026", writer_style(pen_cursive), rng(3))),
    ]
    if (DATA / "uji").is_dir():
        ink = load_eval_inks(str(DATA / "uji"))[0]
        rows.append((f"real UJI character '{ink.label}' ({ink.writer})", ink))
    zip_path = DATA / "omniglot" / "strokes_background_small1.zip"
    if zip_path.is_file():
        # the Latin drawers held out of training (with 20 drawers, the hash hold-out puts
        # them all in "valid"; none were trained on)
        lines = load_eval_inks(f"omniglot-lines:{zip_path}", split="valid", synthetic_lines=8)
        line = next(i for i in lines if len(i.strokes) >= 6)
        first = split_at_middle_lift(line)[0]
        rows.append((f"real Omniglot letters, held-out drawer ({line.writer}): '{line.label}', first half", first))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default="docs/samples_vrnn.png")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--steps", type=int, default=160, help="points per continuation")
    ap.add_argument("--adapt", type=int, default=0, help="fine-tuning steps on each prefix first (0: none)")
    args = ap.parse_args()
    model = vrnn.load_model(args.model, device="cpu")
    tau = args.temperature
    cells, captions = [], []
    for i, ink in enumerate(model.sample(n=2, steps=300, seed=1, temperature=tau)):
        cells.append(ink)
        captions.append(f"sample {i + 1} (from scratch, T={tau})")
    for caption, prefix in prefixes():
        for j, cont in enumerate(model.continue_ink(prefix, n=2, steps=args.steps, seed=0, temperature=tau,
                                                        adapt=args.adapt)):
            cells.append([(prefix, "black"), (cont, PALETTE[j])])
            captions.append(f"{caption} + continuation {j + 1}" + (" (adapted)" if args.adapt else ""))
    render_inks_png(cells, args.out, cols=2, labels=captions)
    print(os.path.relpath(args.out))


if __name__ == "__main__":
    main()
