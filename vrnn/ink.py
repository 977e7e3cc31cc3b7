"""`Ink`: one piece of handwriting, and its stroke-3 offset representation.

Coordinates follow the screen / tablet convention: x to the right, **y pointing
down**. Stroke-3 rows are ``[dx, dy, pen_up]`` (Graves 2013, sketch-rnn): row 0 is
``[0, 0, p]`` so the ink starts at its first point, and ``pen_up = 1`` on the last
point of every stroke.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


class InkFormatError(ValueError):
    """A file or array that is not valid ink. The message names the source and the problem."""


def _per_point(values, strokes: list[np.ndarray], what: str) -> list[np.ndarray] | None:
    """``values`` (``None`` or one array per stroke, one value per point) checked and as float64."""
    if values is None:
        return None
    if len(values) != len(strokes):
        raise InkFormatError(f"{len(values)} {what} arrays for {len(strokes)} strokes")
    out = []
    plural = "times" if what == "time" else f"{what} values"
    for i, (v, s) in enumerate(zip(values, strokes)):
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if v.shape[0] != s.shape[0]:
            raise InkFormatError(f"stroke {i}: {v.shape[0]} {plural} for {s.shape[0]} points")
        if not np.isfinite(v).all():
            raise InkFormatError(f"stroke {i}: non-finite {what}")
        out.append(v)
    return out


@dataclass
class Ink:
    """Pen-down strokes in writing order.

    strokes:  list of ``(n, 2)`` float arrays of ``x, y`` (y down), ``n >= 1``, finite.
    times:    optional list of ``(n,)`` arrays of seconds, one per stroke.
    label, writer: optional metadata.
    meta:     a dict of plain extra facts (``page``, ``line``, ``split``, ...).
    pressure: optional list of ``(n,)`` arrays, one per stroke, of pen pressure
              normalized so that ``1.0`` is full / nominal pressure (InkML ``F``
              over its ``max``, Xournal++ point width over nominal width, Excalidraw
              ``pressures``, the canvas's ``PointerEvent.pressure``); finite. The
              model ignores it; :meth:`to_offsets` / :meth:`from_offsets` do not
              carry it.
    """

    strokes: list[np.ndarray]
    times: list[np.ndarray] | None = None
    label: str | None = None
    writer: str | None = None
    meta: dict = field(default_factory=dict, compare=False, repr=False)
    pressure: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        strokes = []
        for i, s in enumerate(self.strokes):
            a = np.asarray(s, dtype=np.float64)
            if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] < 1:
                raise InkFormatError(f"stroke {i}: expected an (n, 2) array with n >= 1, got shape {a.shape}")
            if not np.isfinite(a).all():
                raise InkFormatError(f"stroke {i}: non-finite coordinate (NaN or inf)")
            strokes.append(a)
        self.strokes = strokes
        self.times = _per_point(self.times, strokes, "time")
        self.pressure = _per_point(self.pressure, strokes, "pressure")

    # ------------------------------------------------------------------ views
    @property
    def num_points(self) -> int:
        return int(sum(len(s) for s in self.strokes))

    @property
    def points(self) -> np.ndarray:
        """All points, ``(N, 2)``, in writing order."""
        if not self.strokes:
            return np.zeros((0, 2))
        return np.concatenate(self.strokes, axis=0)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)``; zeros for an empty ink."""
        p = self.points
        if len(p) == 0:
            return (0.0, 0.0, 0.0, 0.0)
        return (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))

    def end_point(self) -> np.ndarray:
        """The last point written, ``(2,)`` (origin for an empty ink)."""
        if not self.strokes:
            return np.zeros(2)
        return self.strokes[-1][-1].copy()

    # ------------------------------------------------------------- stroke-3
    def to_offsets(self) -> np.ndarray:
        """``(T, 3)`` float32 rows ``[dx, dy, pen_up]``; row 0 is ``[0, 0, p]``."""
        if not self.strokes:
            return np.zeros((0, 3), dtype=np.float32)
        pts = self.points
        pen = np.zeros(len(pts))
        ends = np.cumsum([len(s) for s in self.strokes]) - 1
        pen[ends] = 1.0
        d = np.zeros_like(pts)
        d[1:] = np.diff(pts, axis=0)
        return np.concatenate([d, pen[:, None]], axis=1).astype(np.float32)

    @classmethod
    def from_offsets(cls, offsets: np.ndarray, start: tuple[float, float] = (0.0, 0.0), **meta) -> "Ink":
        """Inverse of :meth:`to_offsets`: cumulative sum from ``start``, split after each ``pen_up``.

        Points after the last ``pen_up`` form a final (unfinished) stroke.
        """
        off = np.asarray(offsets, dtype=np.float64)
        if off.ndim != 2 or off.shape[1] != 3:
            raise InkFormatError(f"offsets must be (T, 3), got shape {off.shape}")
        if not np.isfinite(off).all():
            raise InkFormatError("offsets contain NaN or inf")
        if len(off) == 0:
            return cls(strokes=[], **meta)
        pts = np.cumsum(off[:, :2], axis=0) + np.asarray(start, dtype=np.float64)
        cuts = np.flatnonzero(off[:, 2] > 0.5) + 1
        pieces = np.split(pts, cuts)
        return cls(strokes=[p for p in pieces if len(p)], **meta)

    def copy(self) -> "Ink":
        return Ink(
            strokes=[s.copy() for s in self.strokes],
            times=None if self.times is None else [t.copy() for t in self.times],
            label=self.label,
            writer=self.writer,
            meta=dict(self.meta),
            pressure=None if self.pressure is None else [p.copy() for p in self.pressure],
        )

    def transformed(self, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> "Ink":
        """A copy with every point mapped to ``p * scale + shift``."""
        out = self.copy()
        sh = np.asarray(shift, dtype=np.float64)
        out.strokes = [s * scale + sh for s in out.strokes]
        return out


def ink_digest(ink: Ink) -> str:
    """The content hash of an ink, used by every cache and by the data hold-out: its
    points, stroke breaks and times (label, writer, pressure and meta ignored)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.int64(len(ink.strokes)).tobytes())
    for i, s in enumerate(ink.strokes):
        a = np.ascontiguousarray(s, dtype=np.float64)
        h.update(np.int64(len(a)).tobytes())
        h.update(a.tobytes())
        if ink.times is not None:
            h.update(b"t" + np.ascontiguousarray(ink.times[i], dtype=np.float64).tobytes())
    return h.hexdigest()
