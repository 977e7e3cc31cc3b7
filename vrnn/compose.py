"""Printed handwriting by real hands: words and lines composed from the Omniglot Latin
letters of one drawer.

Omniglot (Lake et al. 2015, MIT) has every lowercase Latin letter drawn by 20 people in
a browser, mostly with a mouse, with timestamps (``vrnn.read_ink`` reads the raw
stroke zips: format ``"omniglot"``). Each letter was drawn on its own, at whatever
size fitted the drawing box, so the composer (:func:`compose_lines`) puts them on one
line the way that person would write them:

- **size by letter class**: every letter is scaled (uniformly, so its shape and
  proportions stay the drawer's) to the height its class has in print: x-height
  letters (``a c e m n o r s u v w x z``), ascenders (``b d h k l``, ``f``, a shorter
  ``t``), descenders (``g p q y``), and the dotted ``i`` and ``j``;
- **placement**: x-height letters and ascenders sit on the baseline, descenders hang
  from the x-line; a drawer has a fixed x-height, letter gap and word gap (drawn once
  per drawer from its own seed) and every letter gets a little jitter in size and
  baseline;
- **time**: each letter keeps its own pen timing; the pen-up moves between letters and
  words take a pause plus the distance at the drawer's median pen speed.

``label`` is the text, ``writer`` the drawer (``omniglot-Latin-07``), ``times`` are set.

**Augmented lines** (``compose_lines(..., augment=True)``, the ``omniglot-lines-augmented:``
data source): there are only 20 Latin drawers, 26 letters each, so a model trained on the
composed lines of 16 of them learns those 416 letters and their 16 line styles by heart
(``docs/kl_study.md``, "The fourth pass"). Augmented lines keep each drawer's letters but
give every line a hand of its own (:func:`line_style`): its own slant (a shear of the
whole line), letter width, x-height, letter and word gaps and baseline slope, drawn
around the drawer's; and every letter a small affine jitter of its own (rotation, shear,
aspect), so no two lines repeat a letter's exact shape. Within a line the hand is
consistent, as a writer's is, so what a line's first half says about its second half is
the same kind of thing it says in real writing. Held-out drawers are never augmented.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .ink import Ink
from .synthetic import random_text

LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: (top, bottom) of each letter class in x-heights above the baseline (y up here).
_CLASS_SPAN = {
    "x": (1.0, 0.0),
    "asc": (1.75, 0.0),
    "t": (1.45, 0.0),
    "desc": (1.0, -0.7),
    "i": (1.55, 0.0),
    "j": (1.55, -0.7),
}
_CLASS = {**{c: "x" for c in "acemnorsuvwxz"}, **{c: "asc" for c in "bdfhkl"}, "t": "t",
          **{c: "desc" for c in "gpqy"}, "i": "i", "j": "j"}


def latin_letter(ink: Ink) -> str | None:
    """The letter of an Omniglot ``Latin/characterNN`` ink (``character01`` is ``a``)."""
    label = ink.label or ""
    if not label.startswith("Latin/character"):
        return None
    try:
        k = int(label.rsplit("character", 1)[1])
    except ValueError:
        return None
    return LETTERS[k - 1] if 1 <= k <= 26 else None


def letters_by_drawer(inks: Sequence[Ink]) -> dict[str, dict[str, Ink]]:
    """``writer -> letter -> ink`` for the Omniglot Latin inks among ``inks`` (a drawer
    that drew a letter twice keeps the first)."""
    out: dict[str, dict[str, Ink]] = defaultdict(dict)
    for ink in inks:
        letter = latin_letter(ink)
        if letter is not None and ink.writer and letter not in out[ink.writer]:
            out[ink.writer][letter] = ink
    return dict(out)


def _drawer_style(writer: str) -> dict:
    rng = np.random.default_rng([sum(ord(c) * 131**i for i, c in enumerate(writer)) % 2**32, 7])
    return {
        "x_height": float(np.exp(rng.uniform(np.log(25.0), np.log(60.0)))),
        "letter_gap": float(rng.uniform(0.12, 0.45)),  # x-heights between letter boxes
        "word_gap": float(rng.uniform(0.8, 1.5)),
        "size_jitter": float(rng.uniform(0.03, 0.09)),
        "baseline_jitter": float(rng.uniform(0.02, 0.08)),
        "slope": float(rng.normal(0.0, 0.015)),
    }


def line_style(writer: str, rng: np.random.Generator) -> dict:
    """A line's own hand, drawn around the drawer's (:func:`_drawer_style`) for augmented lines:
    the same keys plus ``shear`` (slant: x moves by ``shear`` per unit of height above the
    baseline), ``width`` (letters' horizontal scale) and ``letter_warp`` (the spread of each
    letter's own affine jitter)."""
    style = dict(_drawer_style(writer))
    style["x_height"] *= float(np.exp(rng.normal(0.0, 0.25)))
    style["letter_gap"] = float(np.clip(style["letter_gap"] * np.exp(rng.normal(0.0, 0.35)), 0.05, 0.8))
    style["word_gap"] = float(np.clip(style["word_gap"] * np.exp(rng.normal(0.0, 0.2)), 0.5, 2.2))
    style["slope"] += float(rng.normal(0.0, 0.015))
    style["shear"] = float(np.clip(rng.normal(0.0, 0.22), -0.5, 0.5))
    style["width"] = float(np.exp(rng.normal(0.0, 0.12)))
    style["letter_warp"] = 1.0
    return style


def _letter_jitter(rng: np.random.Generator, spread: float) -> np.ndarray:
    """A small random 2x2 map (rotation about 3 degrees, shear 0.05, aspect 5%, times ``spread``)."""
    a = rng.normal(0.0, 0.05 * spread)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    shear = np.array([[1.0, rng.normal(0.0, 0.05 * spread)], [0.0, 1.0]])
    aspect = np.diag([np.exp(rng.normal(0.0, 0.05 * spread)), 1.0])
    return rot @ shear @ aspect


def _pen_speed(letters: dict[str, Ink]) -> float:
    """The drawer's median pen-down speed (its own units per second)."""
    speeds = []
    for ink in letters.values():
        if ink.times is None:
            continue
        for s, t in zip(ink.strokes, ink.times):
            if len(s) > 1 and t[-1] > t[0]:
                speeds.append(float(np.hypot(*np.diff(s, axis=0).T).sum()) / float(t[-1] - t[0]))
    return float(np.median(speeds)) if speeds else 0.0


def compose_word_line(text: str, letters: dict[str, Ink], rng: np.random.Generator, writer: str = "",
                      style: dict | None = None) -> Ink:
    """``text`` (lowercase letters and spaces) written with ``letters`` (letter -> ink of one
    drawer); letters the drawer lacks leave a gap. Coordinates y down. ``style``: the line's
    hand (default: the drawer's own, :func:`_drawer_style`; :func:`line_style` for an
    augmented line)."""
    style = style or _drawer_style(writer)
    width = style.get("width", 1.0)
    warp = style.get("letter_warp", 0.0)
    xh = style["x_height"]
    speed = _pen_speed(letters)
    strokes: list[np.ndarray] = []
    times: list[np.ndarray] = []
    x = 0.0
    clock = 0.0
    last_point = None
    for ch in text:
        if ch == " ":
            x += style["word_gap"] * xh
            continue
        ink = letters.get(ch)
        if ink is None:
            x += 0.6 * xh
            continue
        top, bottom = _CLASS_SPAN[_CLASS[ch]]
        shapes = ink.strokes
        if warp > 0 or width != 1.0:  # an augmented line: this letter's own width and jitter
            m = np.diag([width, 1.0]) @ (_letter_jitter(rng, warp) if warp > 0 else np.eye(2))
            shapes = [s @ m.T for s in shapes]
        pts = np.concatenate(shapes)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        height = max(float(hi[1] - lo[1]), 1e-6)
        k = (top - bottom) * xh * float(np.exp(rng.normal(0.0, style["size_jitter"]))) / height
        base = -bottom * xh + rng.normal(0.0, style["baseline_jitter"]) * xh - style["slope"] * x
        # y down: the letter's bottom (hi[1]) goes to the baseline minus its class's bottom
        dx, dy = x - lo[0] * k, base - hi[1] * k
        for i, s in enumerate(shapes):
            p = s * k + (dx, dy)
            t = ink.times[i] - ink.times[0][0] if ink.times is not None else np.linspace(0.0, 0.02 * len(s), len(s))
            if last_point is not None:
                jump = float(np.hypot(*(p[0] - last_point)))
                clock += float(rng.uniform(0.08, 0.3)) + (jump / (2.0 * speed) if speed > 0 else 0.1)
            t_here = clock + (t - t[0])
            if times and t_here[0] <= times[-1][-1]:
                t_here = t_here + (times[-1][-1] - t_here[0] + 1e-3)
            strokes.append(p)
            times.append(t_here)
            clock = float(t_here[-1])
            last_point = p[-1]
        x += float(hi[0] - lo[0]) * k + style["letter_gap"] * xh
    if not strokes:
        raise ValueError(f"none of the letters of {text!r} were drawn by {writer or 'this drawer'}")
    shear = style.get("shear", 0.0)
    if shear:  # slant: a point h above the baseline (y = 0 here, y down) moves right by shear * h
        strokes = [s - np.column_stack([shear * s[:, 1], np.zeros(len(s))]) for s in strokes]
    y_shift = xh  # baseline at y = xh, like a line on a page
    return Ink(strokes=[s + (0.0, y_shift) for s in strokes], times=times, label=text, writer=writer or None)


def compose_lines(inks: Sequence[Ink], n: int, *, seed: int = 0, writers: Sequence[str] | None = None,
                  augment: bool = False) -> list[Ink]:
    """``n`` words and lines of printed handwriting by the Omniglot drawers among
    ``inks`` (or only ``writers``): a line of 1-5 common words (60%) or one word (40%),
    each by one drawer. ``augment``: each line in a hand of its own around the drawer's
    (:func:`line_style`, the module docstring), marked ``meta["augmented"]``.
    Deterministic for ``seed``; item ``i`` depends on ``(seed, i)``."""
    table = letters_by_drawer(inks)
    pool = sorted(w for w in table if len(table[w]) >= 20 and (writers is None or w in writers))
    if not pool:
        raise ValueError("no Omniglot drawer with at least 20 Latin letters in the given inks")
    out = []
    for i in range(n):
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 11, i])
        writer = pool[int(rng.integers(len(pool)))]
        if rng.random() < 0.6:
            text = random_text(rng, min_words=1, max_words=5, max_chars=32).lower()
        else:
            text = random_text(rng, min_words=1, max_words=1, max_chars=12).lower()
        text = "".join(c for c in text if c in LETTERS or c == " ").strip() or "a"
        style = line_style(writer, np.random.default_rng([int(seed) & 0xFFFFFFFF, 13, i])) if augment else None
        line = compose_word_line(text, table[writer], rng, writer, style)
        if augment:
            line.meta["augmented"] = True
        out.append(line)
    return out
