"""Does a continuation keep the writer's hand? Style features and the continuation benchmark.

The benchmark (:func:`continuation_benchmark`) takes held-out lines with writer ids,
splits each line at the pen lift nearest its middle, lets the model continue the first
half for as many steps as the true second half has, and compares:

- **size ratio**: the continuation's height over the prefix's (both
  :func:`vrnn.preprocess.ink_scale`, the 5-95 percentile range of y); 1 is right.
- **style score**: for every line, is the continuation nearer (in the standardized
  style space of :func:`style_features`) to *its own writer's* true second half than to
  the second half of a line by another writer? The score is the fraction of such
  pairs won (a rank statistic, like an AUC): 0.5 is chance. Two references are
  measured in the same run: the **oracle** puts another line by the same writer in
  place of the continuation (what a perfect imitator of the writer would get; below 1
  because a writer's lines vary), and **chance** puts a line by a random other writer
  there (about 0.5). A third reference, **prefix**, puts the line's own first half there:
  a continuation that kept the prefix's style exactly.
- **per feature**: the same scores on each style feature alone, and the continuation's
  mean offset from the true second half on it (in standard deviations of the true
  halves): which parts of a hand a model carries over, and which way it drifts.

Style features of an ink (all independent of the ink's position and overall scale
except ``log_height``, which is the size itself):

==================  ===========================================================
``log_height``      log of the height (5-95 percentile y range)
``slant``           mean lean (length-weighted) of the pen-down segments within 45
                    degrees of upright, in degrees, positive to the right (y down)
``advance``         horizontal extent per unit of pen-down path length: wide
                    letters and wide spacing advance more per stroke length
``lift_rate``       pen lifts per height of horizontal advance
``stroke_length``   median pen-down stroke length in heights: long for joined
                    cursive, short for print
``gap``             median pen-up jump in heights (letter and word spacing)
==================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ink import Ink
from .preprocess import clean_ink, ink_scale
from .synthetic import writer_lines, writers_in_split

FEATURES = ("log_height", "slant", "advance", "lift_rate", "stroke_length", "gap")


def style_features(ink: Ink) -> np.ndarray:
    """The :data:`FEATURES` of ``ink`` as a float array (see the module docstring)."""
    h = max(ink_scale(ink), 1e-9)
    strokes = [np.asarray(s, np.float64) for s in ink.strokes]
    segs = np.concatenate([np.diff(s, axis=0) for s in strokes if len(s) > 1] or [np.zeros((0, 2))])
    lengths = np.hypot(segs[:, 0], segs[:, 1])
    path = float(lengths.sum())
    vertical = np.abs(segs[:, 1]) > np.abs(segs[:, 0])  # within 45 degrees of upright
    if vertical.any():
        s = segs[vertical] * np.where(segs[vertical, 1:2] > 0, -1.0, 1.0)  # every segment pointing up
        # length-weighted mean direction of the upright segments, as an angle from vertical
        slant = float(np.degrees(np.arctan2(s[:, 0].sum(), -s[:, 1].sum())))
    else:
        slant = 0.0
    pts = ink.points
    width = float(np.ptp(pts[:, 0])) if len(pts) else 0.0
    stroke_len = [float(np.hypot(*np.diff(s, axis=0).T).sum()) if len(s) > 1 else 0.0 for s in strokes]
    jumps = [float(np.hypot(*(b[0] - a[-1]))) for a, b in zip(strokes[:-1], strokes[1:])]
    return np.array([
        np.log(h),
        slant,
        width / max(path, 1e-9),
        (len(strokes) - 1) / max(width / h, 0.5),
        float(np.median(stroke_len)) / h,
        float(np.median(jumps)) / h if jumps else 0.0,
    ])


def split_at_middle_lift(ink: Ink) -> tuple[Ink, Ink] | None:
    """``(first, second)`` halves of ``ink`` at the pen lift nearest the middle point, or
    ``None`` when the ink has a single stroke."""
    if len(ink.strokes) < 2:
        return None
    counts = np.cumsum([len(s) for s in ink.strokes])
    k = int(np.argmin(np.abs(counts[:-1] - counts[-1] / 2.0))) + 1
    times = ink.times

    def part(sl: slice) -> Ink:
        return Ink(strokes=ink.strokes[sl], times=None if times is None else times[sl], label=ink.label,
                   writer=ink.writer)

    return part(slice(0, k)), part(slice(k, None))


@dataclass
class BenchmarkResult:
    lines: int
    size_ratio_median: float
    size_ratio_iqr: tuple[float, float]
    style_score: float  # continuation vs own writer's second half, against other writers
    oracle_score: float  # another line by the same writer in place of the continuation
    chance_score: float  # a line by another writer in place of the continuation
    temperature: float = 1.0  # of the continuations (1: the model's own distribution)
    adapt_steps: int = 0  # fine-tuning steps on each prefix before continuing it (0: the model as trained)
    z_mode: str = "sample"  # "mean": z at the prior mean while continuing
    prefix_score: float = float("nan")  # the line's own first half in place of the continuation
    # per feature of FEATURES: {"continuation", "oracle", "chance", "prefix"} scores and "bias",
    # the continuation's mean offset from the true second half in standard deviations
    features: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"lines": self.lines, "temperature": self.temperature, "adapt_steps": self.adapt_steps,
                "z_mode": self.z_mode,
                "size_ratio_median": self.size_ratio_median,
                "size_ratio_iqr": list(self.size_ratio_iqr), "style_score": self.style_score,
                "oracle_score": self.oracle_score, "chance_score": self.chance_score,
                "prefix_score": self.prefix_score, "features": self.features}


def _scores(candidates: np.ndarray, truths: np.ndarray, writers: list[str], valid: np.ndarray) -> float:
    """Mean over lines ``i`` of the fraction of other-writer truths ``j`` with
    ``d(candidate_i, truth_i) < d(candidate_i, truth_j)`` (ties count one half)."""
    won = []
    for i in np.flatnonzero(valid):
        others = [j for j in range(len(writers)) if writers[j] != writers[i]]
        if not others:
            continue
        d_own = np.linalg.norm(candidates[i] - truths[i])
        d_other = np.linalg.norm(candidates[i] - truths[others], axis=1)
        won.append(float(np.mean((d_own < d_other) + 0.5 * (d_own == d_other))))
    return float(np.mean(won)) if won else float("nan")


def held_out_lines(writers: int = 20, per_writer: int = 4, *, seed: int = 99) -> list[Ink]:
    """``per_writer`` lines of random text by each of the first ``writers`` synthetic ``test``
    writers (never trained or validated on): the benchmark's standard synthetic set."""
    ids = writers_in_split("test")
    if not 2 <= writers <= len(ids) or per_writer < 2:
        raise ValueError(f"the continuation benchmark needs 2 to {len(ids)} test writers and at least two "
                         f"lines by each (the oracle), got {writers} x {per_writer}")
    return writer_lines(ids[:writers], per_writer, seed=seed)


def lines_per_writer(lines: int, writers: int, minimum: int = 4) -> int:
    """Lines to take from each of ``writers`` writers so that ``lines`` fit (at least ``minimum``)."""
    return max(minimum, -(-lines // max(writers, 1)))


def synthetic_benchmark_lines(lines: int) -> list[Ink]:
    """``lines`` held-out synthetic lines in whole same-writer groups: 4 by each ``test``
    writer (2 for fewer than 8 lines, more each beyond 4 x the writers)."""
    per_writer = lines_per_writer(lines, len(writers_in_split("test")), minimum=4 if lines >= 8 else 2)
    inks = held_out_lines(writers=max(2, -(-lines // per_writer)), per_writer=per_writer)
    return lines_by_writer(inks, lines, per_writer=per_writer)


def lines_by_writer(inks: list[Ink], limit: int, *, per_writer: int = 4) -> list[Ink]:
    """Up to ``limit`` inks with a writer id and more than one stroke: whole groups of 2 to
    ``per_writer`` lines by one writer (the oracle needs a second line by the same
    writer), writer after writer in order of appearance, so every line has a partner."""
    groups: dict[str, list[Ink]] = {}
    for ink in inks:
        if ink.writer is not None and len(ink.strokes) > 1:
            g = groups.setdefault(ink.writer, [])
            if len(g) < per_writer:
                g.append(ink)
    out: list[Ink] = []
    for g in groups.values():
        take = min(len(g), limit - len(out))
        if take >= 2:
            out.extend(g[:take])
    return out


def continuation_benchmark(model, inks: list[Ink], *, seed: int = 0, temperature: float = 1.0,
                           adapt: int = 0, z_mode: str = "sample") -> BenchmarkResult:
    """Split every line, continue its first half with ``model`` and score size and style
    (module docstring). Lines need a ``writer``; lines of a single stroke are skipped.
    ``adapt``: fine-tune a copy of the model on each first half for that many steps first.
    ``z_mode``: ``"sample"`` (the VRNN as trained) or ``"mean"`` (``z`` at the prior mean, the
    app's "prior mean"; the RNN-GMM has no ``z`` and ignores it)."""
    halves, writers = [], []
    for ink in inks:
        parts = split_at_middle_lift(ink)
        if parts is not None and ink.writer is not None:
            halves.append(parts)
            writers.append(ink.writer)
    if len(set(writers)) < 2:
        raise ValueError("the continuation benchmark needs lines by at least two writers")
    rng = np.random.default_rng(seed)
    feats_cont, feats_true, feats_first, ratios = [], [], [], []
    for i, (first, second) in enumerate(halves):
        steps = max(clean_ink(second, getattr(model, "preprocess_config", None), scale=ink_scale(first)).num_points, 2)
        extra = {"adapt": int(adapt)} if adapt else {}
        if z_mode != "sample":
            extra["z_mode"] = z_mode
        cont = model.continue_ink(first, n=1, steps=steps, temperature=temperature, seed=seed + i, **extra)[0]
        ratios.append(ink_scale(cont) / max(ink_scale(first), 1e-9))
        feats_cont.append(style_features(cont))
        feats_true.append(style_features(second))
        feats_first.append(style_features(first))
    feats_cont, feats_true, feats_first = np.asarray(feats_cont), np.asarray(feats_true), np.asarray(feats_first)
    # the oracle: another line's second half by the same writer; chance: one by another writer
    oracle = np.full_like(feats_true, np.nan)
    chance = np.empty_like(feats_true)
    for i, w in enumerate(writers):
        same = [j for j in range(len(writers)) if writers[j] == w and j != i]
        other = [j for j in range(len(writers)) if writers[j] != w]
        if same:
            oracle[i] = feats_true[int(rng.choice(same))]
        chance[i] = feats_true[int(rng.choice(other))]
    mu, sd = feats_true.mean(0), feats_true.std(0) + 1e-9
    z = lambda a: (a - mu) / sd  # noqa: E731
    has_oracle = ~np.isnan(oracle).any(1)
    everyone = np.ones(len(writers), bool)
    r = np.asarray(ratios)
    stand_ins = {"continuation": (feats_cont, everyone), "oracle": (np.nan_to_num(oracle), has_oracle),
                 "chance": (chance, everyone), "prefix": (feats_first, everyone)}

    def scores(cols) -> dict[str, float]:
        return {name: _scores(z(c)[:, cols], z(feats_true)[:, cols], writers, valid)
                for name, (c, valid) in stand_ins.items()}

    overall = scores(slice(None))
    features = {}
    for k, name in enumerate(FEATURES):
        features[name] = scores(slice(k, k + 1))
        features[name]["bias"] = float(np.mean(z(feats_cont)[:, k] - z(feats_true)[:, k]))
    return BenchmarkResult(
        lines=len(writers),
        size_ratio_median=float(np.median(r)),
        size_ratio_iqr=(float(np.percentile(r, 25)), float(np.percentile(r, 75))),
        style_score=overall["continuation"],
        oracle_score=overall["oracle"],
        chance_score=overall["chance"],
        temperature=float(temperature),
        adapt_steps=int(adapt),
        z_mode=z_mode,
        prefix_score=overall["prefix"],
        features=features,
    )
