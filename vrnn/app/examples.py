"""Built-in example inks: lines of the synthetic handwriting corpus and a few
hand-made single characters in the style of the UJI Pen Characters set.

The characters are written here as a handful of control points per stroke (y down,
about 100 units tall, like a tablet capture) and densified with a Catmull-Rom
spline with a steady pen speed, so they carry timestamps like real pen data.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from vrnn.ink import Ink

# Control points per stroke, (x, y) with y down; one character is about 100 units tall.
_CHARACTERS: dict[str, list[list[tuple[float, float]]]] = {
    "a": [[(62, 52), (50, 44), (34, 46), (24, 62), (26, 80), (40, 90), (55, 84), (62, 68),
           (63, 52), (63, 76), (66, 90), (72, 92)]],
    "b": [[(24, 2), (22, 40), (21, 70), (22, 92), (24, 80), (34, 62), (50, 56), (64, 66),
           (66, 82), (54, 94), (36, 94), (24, 88)]],
    "k": [[(26, 0), (25, 46), (24, 94)],
          [(60, 44), (42, 62), (27, 70), (44, 76), (58, 88), (68, 96)]],
    "e": [[(26, 70), (50, 70), (62, 62), (56, 48), (40, 45), (26, 56), (24, 76), (36, 92),
           (54, 94), (66, 86)]],
    "3": [[(24, 14), (40, 4), (58, 8), (62, 24), (52, 40), (38, 46), (56, 50), (66, 66), (60, 86),
           (42, 96), (22, 88)]],
    "R": [[(24, 96), (24, 50), (25, 4)],
          [(25, 6), (48, 4), (64, 14), (66, 32), (54, 46), (30, 50), (44, 62), (58, 80), (70, 98)]],
}


def _catmull_rom(ctrl: np.ndarray, per_segment: int = 10) -> np.ndarray:
    """A smooth curve through the control points (centripetal-free, uniform Catmull-Rom)."""
    if len(ctrl) < 3:
        t = np.linspace(0, 1, per_segment * max(1, len(ctrl) - 1) + 1)[:, None]
        return ctrl[0] + t * (ctrl[-1] - ctrl[0])
    p = np.vstack([ctrl[0], ctrl, ctrl[-1]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(ctrl[-1:])
    return np.vstack(out)


def character_ink(char: str, speed: float = 220.0) -> Ink:
    """One hand-made character as an :class:`~vrnn.Ink` with times (``speed`` units / s)."""
    strokes, times = [], []
    t0 = 0.0
    for ctrl in _CHARACTERS[char]:
        pts = _catmull_rom(np.asarray(ctrl, dtype=np.float64))
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        t = t0 + np.concatenate([[0.0], np.cumsum(seg)]) / speed
        strokes.append(pts)
        times.append(t)
        t0 = t[-1] + 0.25  # pen in the air between strokes
    return Ink(strokes=strokes, times=times, label=char, writer="hand-made")


def character_names() -> list[str]:
    return list(_CHARACTERS)


@lru_cache(maxsize=4)
def builtin_examples(n_lines: int = 3, seed: int = 7) -> dict[str, Ink]:
    """Example name -> ink: ``n_lines`` synthetic handwriting lines (whole lines of 2-6
    words by held-out test writers), then the characters."""
    from vrnn.synthetic import generate_line, random_text, writer_style, writers_in_split

    out: dict[str, Ink] = {}
    writers = writers_in_split("test")
    for i in range(n_lines):
        rng = np.random.default_rng([seed, i])
        ink = generate_line(random_text(rng), writer_style(writers[int(rng.integers(len(writers)))]), rng)
        out[f"Synthetic line {i + 1}: “{ink.label}”"] = ink
    for c in _CHARACTERS:
        out[f"Character “{c}” (UJI-style, hand-made)"] = character_ink(c)
    return out
