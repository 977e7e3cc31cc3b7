"""Learning curves of training runs: validation bound against optimizer steps and against
wall-clock minutes, one line per run, as a PNG (Pillow only, no plotting stack needed).

    python scripts/learning_curves.py pretrained/vrnn pretrained/rnn --png docs/learning_curves.png

Each run folder holds the ``metrics.jsonl`` that ``python -m vrnn.train`` writes; its
``"valid"`` records give ``elbo_per_point`` (the VRNN's ELBO, the RNN-GMM's exact
log-likelihood: both in nats per point, higher is better). ``--table`` also prints the
bound of every run at equal steps and at equal wall-clock time.

A run started with ``--init-from`` is drawn with the run it started from:
``PARENT+CHILD`` (e.g. ``docs/runs/vrnn-105min+pretrained/vrnn``) follows the parent's
curve up to the step of the checkpoint the child started from (its card's ``init_from``),
then the child's, shifted by that step and that time; ``A+B+C`` chains three stages.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def read_curve(run: Path, source: int | None = None) -> list[tuple[int, float, float]]:
    """``(step, minutes, bound)`` of every validation of a run, in order; ``source``: the bound on
    that source of the mixture only (its index in the card's ``mixture``), not the pooled one."""
    out = []
    with open(Path(run) / "metrics.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") != "valid":
                continue
            scored = rec
            if source is not None:
                by = rec.get("by_source") or []
                if not 0 <= source < len(by):
                    raise SystemExit(f"error: {run}: its validations have {len(by)} sources, not source {source}")
                scored = by[source]
            if scored.get("elbo_per_point") is not None:
                out.append((int(rec["step"]), float(rec.get("elapsed_s", 0.0)) / 60.0, float(scored["elbo_per_point"])))
    return out


def read_lineage(spec: str, source: int | None = None) -> list[tuple[int, float, float]]:
    """The curve of ``RUN`` or of ``PARENT+CHILD`` (a run and the ``--init-from`` run that continued
    it); ``A+B+C`` follows a chain of them."""
    return _lineage(spec, source)[0]


def _lineage(spec: str, source: int | None) -> tuple[list[tuple[int, float, float]], int, float]:
    """The curve of ``spec`` and the step and minute at which its last run started."""
    if "+" not in spec:
        return read_curve(Path(spec), source), 0, 0.0
    parent, child = spec.rsplit("+", 1)
    card = json.loads((Path(child) / "config.json").read_text(encoding="utf-8")).get("card", {})
    init = card.get("init_from")
    if not init or init.get("steps") is None or init.get("elapsed_s") is None:
        raise SystemExit(f"error: {child} was not started with --init-from (its card has no init_from steps)")
    curve, start_step, start_min = _lineage(parent, source)
    step0, min0 = start_step + int(init["steps"]), start_min + float(init["elapsed_s"]) / 60.0
    head = [p for p in curve if p[0] <= step0]
    return head + [(s + step0, m + min0, v) for s, m, v in read_curve(Path(child), source)], step0, min0


def value_at(curve: list[tuple[int, float, float]], key: int, at: float) -> float | None:
    """Best bound reached by ``at`` (``key`` 0: steps, 1: minutes), or None before the first point."""
    seen = [p[2] for p in curve if p[key] <= at]
    return max(seen) if seen else None


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = max(hi - lo, 1e-9)
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=mag * 10)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _panel(draw, box, curves, names, key: int, xlabel: str, ylabel: str, font, y_range) -> None:
    x0, y0, x1, y1 = box
    xs = [p[key] for c in curves for p in c]
    xlo, xhi = 0.0, max(xs) * 1.02 if xs else 1.0
    ylo, yhi = y_range

    def to_px(x, y):
        return (x0 + (x - xlo) / (xhi - xlo) * (x1 - x0), y1 - (y - ylo) / (yhi - ylo) * (y1 - y0))

    draw.rectangle(box, outline="#444444", width=1)
    for t in _ticks(xlo, xhi):
        px, _ = to_px(t, ylo)
        draw.line([(px, y1), (px, y1 + 5)], fill="#444444")
        draw.line([(px, y0), (px, y1)], fill="#eeeeee")
        draw.text((px, y1 + 8), f"{t:g}", fill="#222222", font=font, anchor="mt")
    for t in _ticks(ylo, yhi):
        _, py = to_px(xlo, t)
        draw.line([(x0 - 5, py), (x0, py)], fill="#444444")
        draw.line([(x0, py), (x1, py)], fill="#eeeeee")
        draw.text((x0 - 8, py), f"{t:.2f}", fill="#222222", font=font, anchor="rm")
    draw.rectangle(box, outline="#444444", width=1)
    for i, c in enumerate(curves):
        pts = [to_px(p[key], p[2]) for p in c]
        if len(pts) > 1:
            draw.line(pts, fill=COLORS[i % len(COLORS)], width=3)
        for px, py in pts:
            draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=COLORS[i % len(COLORS)])
    draw.text(((x0 + x1) / 2, y1 + 30), xlabel, fill="#222222", font=font, anchor="mt")
    draw.text((x0, y0 - 10), ylabel, fill="#222222", font=font, anchor="lb")


def _legend(draw, names, font, width: int, y: int) -> None:
    """One row of legend entries above the panels (inside a panel it hid the curves' ends)."""
    widths = [44 + draw.textlength(n, font=font) + 28 for n in names]
    x = max(10.0, (width - sum(widths)) / 2)
    for i, (name, w) in enumerate(zip(names, widths)):
        draw.line([(x, y), (x + 30, y)], fill=COLORS[i % len(COLORS)], width=3)
        draw.text((x + 38, y), name, fill="#222222", font=font, anchor="lm")
        x += w


def render(curves, names, path: Path, width: int = 1400, height: int = 560) -> None:
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=16)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    ys = sorted(p[2] for c in curves for p in c)
    # leave out the first validations' very low values: they would flatten the rest
    lo = ys[int(0.1 * (len(ys) - 1))] if ys else 0.0
    hi = ys[-1] if ys else 1.0
    pad = 0.05 * max(hi - lo, 1e-3)
    y_range = (lo - pad, hi + pad)
    half = width // 2
    label = "validation bound (nats/point, higher is better)"
    _legend(draw, names, font, width, 20)
    _panel(draw, (90, 80, half - 30, height - 70), curves, names, 0, "optimizer steps", label, font, y_range)
    _panel(draw, (half + 90, 80, width - 30, height - 70), curves, names, 1, "wall-clock minutes", label, font, y_range)
    img.save(path, optimize=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Plot validation bound vs steps and vs wall-clock of training runs.")
    ap.add_argument("runs", nargs="+", help="run folders holding metrics.jsonl, or PARENT+CHILD for an --init-from run")
    ap.add_argument("--names", help="comma-separated legend names (default: folder names)")
    ap.add_argument("--png", required=True, help="output PNG path")
    ap.add_argument("--table", action="store_true", help="print bounds at equal steps and equal wall-clock")
    ap.add_argument("--source", type=int, help="plot this source of the mixture (index in the card's mixture), "
                                                "not the pooled validation")
    a = ap.parse_args(argv)
    curves = [read_lineage(r, a.source) for r in a.runs]
    names = a.names.split(",") if a.names else [Path(r).name for r in a.runs]
    render(curves, names, Path(a.png))
    print(f"wrote {a.png}")
    if a.table:
        last_step = min(c[-1][0] for c in curves if c)
        last_min = min(c[-1][1] for c in curves if c)
        for name, c in zip(names, curves):
            s, m = value_at(c, 0, last_step), value_at(c, 1, last_min)
            print(f"{name}: best {max(p[2] for p in c):.3f} | at step {last_step}: {s:.3f} | "
                  f"at {last_min:.1f} min: {m:.3f} | {c[-1][0]} steps in {c[-1][1]:.1f} min")


if __name__ == "__main__":
    main()
