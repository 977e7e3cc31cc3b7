"""One preprocessing pipeline for training data and for drawn or uploaded ink alike.

    raw Ink --clean_ink--> cleaned Ink (own coordinates) --/scale--> unit-scale stroke-3
            --Normalizer--> normalized offsets the model reads

Steps of :func:`clean_ink`, in order:

1. **Scale**: :func:`ink_scale` measures the ink's size (the 5-95 percentile range of
   its y coordinates, a robust letter/line height; falls back to x for flat ink).
   Every length threshold below is a fraction of it, so the whole pipeline is
   scale-equivariant: an ink drawn 3x larger gives 3x larger continuations.
2. **Jitter**: consecutive points closer than ``jitter * scale`` are dropped (repeated
   points, sub-pixel tremor of a mouse or a 120 Hz pen).
3. **Simplify** (optional): Ramer-Douglas-Peucker with tolerance ``rdp * scale``.
4. **Resample**: each stroke is resampled along its arc length at a fixed spacing of
   ``spacing * scale``, keeping its first and last points, so point density matches
   training data whatever the source's sampling rate (browser pen, tablet, spatially
   sampled datasets). Timestamps are interpolated along.

:func:`prepare` then divides the offsets by the scale and clamps outlier offsets
(``|dx|, |dy| <= clamp``, e.g. a jump between lines). The model's
:class:`Normalizer` (offset mean and std from training data, stored in the checkpoint)
standardizes them; its inverse and the scale map model output back to ink coordinates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .ink import Ink, InkFormatError


@dataclass(frozen=True)
class PreprocessConfig:
    """Lengths are fractions of the ink's scale (see :func:`ink_scale`)."""

    spacing: float = 0.15  # resampling step along each stroke
    jitter: float = 0.02  # drop consecutive points closer than this
    rdp: float | None = None  # Ramer-Douglas-Peucker tolerance; None: off
    clamp: float = 6.0  # max |dx|, |dy| of a unit-scale offset
    resample: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def ink_scale(ink: Ink) -> float:
    """Robust size of an ink: the 5-95 percentile range of y, else of x / 2, else 1.

    Scales linearly with the ink (``ink_scale(ink * a) == a * ink_scale(ink)``).
    """
    pts = ink.points
    if len(pts) < 2:
        return 1.0
    lo, hi = np.percentile(pts, [5.0, 95.0], axis=0)
    ext = hi - lo
    if ext[1] > 1e-9 * max(1.0, float(np.abs(pts).max())):
        return float(ext[1])
    full = pts.max(axis=0) - pts.min(axis=0)
    if full[1] > 0:
        return float(full[1])
    if full[0] > 0:
        return float(full[0]) / 2.0
    return 1.0


def drop_jitter(points: np.ndarray, min_dist: float) -> np.ndarray:
    """Indices of points kept: each at least ``min_dist`` from the previous kept one.

    The last point is always kept (moved onto, if it was too close) so strokes end
    where they ended.
    """
    n = len(points)
    if n <= 1:
        return np.arange(n)
    pts = points.tolist()  # plain floats: the greedy pass is sequential, numpy per point is slow
    keep = [0]
    lx, ly = pts[0]
    for i in range(1, n):
        x, y = pts[i]
        if math.hypot(x - lx, y - ly) >= min_dist:
            keep.append(i)
            lx, ly = x, y
    if keep[-1] != n - 1:
        if len(keep) > 1:
            keep[-1] = n - 1
        else:
            keep.append(n - 1)
    return np.asarray(keep)


def rdp_indices(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification; returns kept indices (iterative, no recursion)."""
    n = len(points)
    if n < 3:
        return np.arange(n)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = points[b] - points[a]
        rel = points[a + 1 : b] - points[a]
        norm = np.hypot(*seg)
        if norm == 0:
            d = np.hypot(rel[:, 0], rel[:, 1])
        else:
            d = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm
        i = int(np.argmax(d))
        if d[i] > epsilon:
            m = a + 1 + i
            keep[m] = True
            stack.append((a, m))
            stack.append((m, b))
    return np.flatnonzero(keep)


def resample_stroke(points: np.ndarray, step: float, times: np.ndarray | None = None):
    """Points every ``step`` of arc length, plus the stroke's exact end point."""
    if len(points) < 2:
        return points.copy(), None if times is None else times.copy()
    seg = np.hypot(*np.diff(points, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    total = s[-1]
    if total <= 0:
        return points[:1].copy(), None if times is None else times[:1].copy()
    k = max(1, int(np.ceil(total / step - 1e-9)))
    # Uniform spacing that ends exactly on the last point (spacing <= step).
    grid = np.linspace(0.0, total, k + 1)
    out = np.stack([np.interp(grid, s, points[:, 0]), np.interp(grid, s, points[:, 1])], axis=1)
    t = None if times is None else np.interp(grid, s, times)
    return out, t


def clean_ink(ink: Ink, config: PreprocessConfig | None = None, scale: float | None = None) -> Ink:
    """Jitter removal, optional RDP and arc-length resampling, in the ink's own coordinates."""
    cfg = config or PreprocessConfig()
    sc = ink_scale(ink) if scale is None else float(scale)
    strokes, times = [], [] if ink.times is not None else None
    for i, s in enumerate(ink.strokes):
        t = None if ink.times is None else ink.times[i]
        idx = drop_jitter(s, cfg.jitter * sc)
        s2, t2 = s[idx], None if t is None else t[idx]
        if cfg.rdp:
            idx = rdp_indices(s2, cfg.rdp * sc)
            s2, t2 = s2[idx], None if t2 is None else t2[idx]
        if cfg.resample:
            s2, t2 = resample_stroke(s2, cfg.spacing * sc, t2)
        strokes.append(s2)
        if times is not None:
            times.append(t2)
    return Ink(strokes=strokes, times=times, label=ink.label, writer=ink.writer, meta=dict(ink.meta))


@dataclass
class Prepared:
    """An ink ready for the model: the cleaned ink, its unit-scale offsets, and the scale."""

    ink: Ink  # cleaned, in the source's own coordinates; one point per model step
    offsets: np.ndarray  # (T, 3) float32, dx/dy divided by ``scale`` and clamped
    scale: float


def prepare(ink: Ink, config: PreprocessConfig | None = None) -> Prepared:
    """Clean an ink and turn it into unit-scale stroke-3 offsets."""
    cfg = config or PreprocessConfig()
    if ink.num_points == 0:
        raise InkFormatError("ink has no points")
    scale = ink_scale(ink)
    cleaned = clean_ink(ink, cfg, scale=scale)
    off = cleaned.to_offsets()
    off[:, :2] = np.clip(off[:, :2] / scale, -cfg.clamp, cfg.clamp)
    return Prepared(ink=cleaned, offsets=off.astype(np.float32), scale=scale)


def prepare_offsets(ink: Ink, config: PreprocessConfig | None = None) -> np.ndarray:
    """Unit-scale stroke-3 offsets ``(T, 3)`` of a cleaned ink (see :func:`prepare`)."""
    return prepare(ink, config).offsets


@dataclass
class Normalizer:
    """Standardizes ``dx, dy`` with training-data mean and std; pen bits pass through."""

    mean: tuple[float, float] = (0.0, 0.0)
    std: tuple[float, float] = (1.0, 1.0)

    @classmethod
    def fit(cls, offsets: list[np.ndarray]) -> "Normalizer":
        """Statistics over every point after the first of each sequence (row 0 is always 0)."""
        rows = [o[1:, :2] for o in offsets if len(o) > 1]
        if not rows:
            return cls()
        d = np.concatenate(rows).astype(np.float64)
        std = np.maximum(d.std(axis=0), 1e-3)
        return cls(mean=tuple(map(float, d.mean(axis=0))), std=tuple(map(float, std)))

    def normalize(self, off: np.ndarray) -> np.ndarray:
        out = np.array(off, dtype=np.float32, copy=True)
        out[..., :2] = (out[..., :2] - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return out

    def denormalize(self, off: np.ndarray) -> np.ndarray:
        out = np.array(off, dtype=np.float64, copy=True)
        out[..., :2] = out[..., :2] * np.asarray(self.std) + np.asarray(self.mean)
        return out

    @property
    def start_row(self) -> np.ndarray:
        """Normalized ``[0, 0, 0]``: the row every sequence starts with."""
        return self.normalize(np.zeros((1, 3), np.float32))[0]

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        mean, std = d["mean"], d["std"]
        if len(mean) != 2 or len(std) != 2 or not all(np.isfinite(mean + std)) or min(std) <= 0:
            raise ValueError(f"invalid normalizer statistics: {d}")
        return cls(mean=tuple(map(float, mean)), std=tuple(map(float, std)))


def make_windows(offsets: list[np.ndarray], max_len: int = 256, min_len: int = 16) -> list[np.ndarray]:
    """Cut long sequences into training windows of at most ``max_len`` rows.

    Cuts are placed right after a pen lift when one falls in the second half of a
    window (windows then begin with a fresh stroke); each window's first row gets
    ``dx = dy = 0``, since a window starts where its first point is. Windows shorter
    than ``min_len`` are dropped.
    """
    out = []
    for seq in offsets:
        start, n = 0, len(seq)
        while n - start >= min_len:
            end = min(n, start + max_len)
            if end < n:
                lifts = np.flatnonzero(seq[start + max_len // 2 : end, 2] > 0.5)
                if len(lifts):
                    end = start + max_len // 2 + int(lifts[-1]) + 1
            w = np.array(seq[start:end], dtype=np.float32, copy=True)
            w[0, :2] = 0.0
            out.append(w)
            start = end
    return out


def collate(seqs: list[np.ndarray]):
    """Pad sequences into ``x (B, T, 3)`` and ``mask (B, T)`` float tensors (1 = real point)."""
    import torch

    T = max(len(s) for s in seqs)
    x = np.zeros((len(seqs), T, 3), np.float32)
    mask = np.zeros((len(seqs), T), np.float32)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
        mask[i, : len(s)] = 1.0
    return torch.from_numpy(x), torch.from_numpy(mask)
