"""The built-in synthetic handwriting corpus: cursive and printed writing with human-like
pen (or mouse) timing.

Letter shapes come from the single-stroke Hershey fonts: the script fonts ``cursive``
and ``scripts`` (which share their letters; letters join within a word) and the print
fonts ``futural`` / ``rowmans`` (letters written apart). Half the pen writers print;
40% of all writers use a mouse (:data:`MOUSE_SHARE`), and 60% of those print. Items are
what people write in the app (:func:`random_item`): lines of 2-6 words, one or two
words, single letters and digits, and numbers. A line is made in five steps, all
vectorized over the line:

1. **Layout** (font units, y down): glyph strokes placed left to right with the
   writer's letter and word spacing and a little per-letter size / baseline jitter.
   Each letter is first bent by the writer's smooth random displacement field, in
   the letter's own coordinates, so a writer's "a" keeps its look across lines.
2. **Pen order**: within a word, consecutive strokes whose end and start are close
   (where the script font joins letters, and retraces like the stem of a "d") become
   one pen-down stroke; i/j dots and t/f/x crossings are moved after the word's main
   stroke, as people write them.
3. **Shape**: strokes are resampled densely along their arc length and smoothed
   (this rounds Hershey's polygon corners and turns straight joins into smooth
   connectors), then slanted, scaled to the writer's x-height and bent by a
   drifting baseline.
4. **Kinematics**: pen speed follows the two-thirds power law
   ``v = K * curvature ** (-1/3)`` (clipped), with smooth minimum-jerk-like
   ramps at the start and end of every stroke; the pen is sampled at 100 Hz like
   a tablet; pen-up travel takes ``pause + distance / speed``. A mouse is slower,
   with a flatter speed profile (a smaller curvature exponent), and is sampled at
   browser pointer events (about 60 Hz, uneven gaps, the odd dropped frame).
5. **Tremor**: small, slightly smoothed noise on the sampled points; a mouse adds a
   slow drift of the hand and lands on whole pixels.

Coordinates: y down, one unit is roughly one pixel, x-heights of 20-60 units.
Hershey's own data is already y-down (cap line -12, baseline +9), so no flip is
needed; ``HersheyFonts.normalize_rendering`` is what would make it y-up.

Writers ``syn-0000`` ... ``syn-0399`` each have a fixed style (it depends only on
the writer's number). Splits are by writer: index % 20 == 18 is ``valid``,
== 19 is ``test``, the rest ``train`` (90 / 5 / 5), so held-out writers never
appear in training.

Preview: ``python -m vrnn.synthetic --png grid.png [--color-strokes]`` renders a grid
of lines from a few writers (``docs/synthetic_grid.png`` is made this way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources

import numpy as np

from vrnn.ink import Ink

SAMPLE_RATE_HZ = 100.0
NUM_WRITERS = 400
SPLITS = ("train", "valid", "test")
_SPLIT_CODE = {None: 0, "train": 1, "valid": 2, "test": 3}
_STYLE_SEED = 20150605  # fixed: a writer's style must not change with the corpus seed

MOUSE_SHARE = 0.4  # writers who write with a mouse (browser pointer events)
PRINT_SHARE = 0.5  # pen writers who print rather than join letters
MOUSE_PRINT_SHARE = 0.6  # mouse writers who print
MOUSE_EVENT_HZ = 60.0  # typical pointer-event rate of a browser
SCRIPT_FONTS = ("cursive", "scripts")
PRINT_FONTS = ("futural", "rowmans")
_BASELINE = 9.0  # Hershey baseline, font units, y down
_CROSS_LETTERS = frozenset("tfx")  # their last stroke is a crossing, written after the word
# Largest gap (font units, undeformed layout) bridged by one pen-down stroke, between
# letters and within a letter. Script fonts: every lowercase pair joins (gaps <= 9.1),
# capitals join only where they end near the next letter; within a letter, retraces
# up to the stem of a "p" (19.0) join but not the separate strokes of "W" (23.3).
# Print letters join only where their strokes touch.
_JOIN_GAP = {"script": (10.0, 21.5), "print": (0.8, 0.8)}
_DENSE_STEP = 0.5  # font units between points of the dense path


# ---------------------------------------------------------------------- glyphs
@dataclass(frozen=True)
class Glyph:
    """One character of a Hershey font, in font units, x from the left edge, y down."""

    main: tuple[np.ndarray, ...]  # strokes written in the flow of the word
    deferred: tuple[np.ndarray, ...]  # dots and crossings, written after the word
    width: float
    is_letter: bool


@dataclass(frozen=True)
class Font:
    """A parsed Hershey font: glyphs by character and the metrics the layout needs."""

    name: str
    glyphs: dict[str, Glyph]
    x_height: float  # font units from the top of "x" to the baseline
    kind: str  # "script" (letters join) or "print"


def _is_dot(stroke: np.ndarray) -> bool:
    return float(np.ptp(stroke, axis=0).max()) <= 2.5


def _as_tap(stroke: np.ndarray) -> np.ndarray:
    """Hershey draws dots as tiny squares; a pen makes a short tap at their centre."""
    c = stroke.mean(axis=0)
    return np.stack([c - (0.15, 0.25), c + (0.15, 0.25)])


@cache
def load_font(name: str) -> Font:
    """Parse a Hershey font once per process into :class:`Glyph` arrays."""
    from HersheyFonts import HersheyFonts

    hf = HersheyFonts()
    hf.load_default_font(name)
    glyphs = {}
    for ch, g in hf.all_glyphs.items():
        strokes = [np.asarray(s, dtype=np.float64) - (g.left_offset, 0.0) for s in g.strokes]
        strokes = [_as_tap(s) if _is_dot(s) else s for s in strokes]
        is_letter = ch.isalpha()
        main, deferred = [], []
        for k, s in enumerate(strokes):
            crossing = ch in _CROSS_LETTERS and len(strokes) > 1 and k == len(strokes) - 1
            if is_letter and (crossing or (_is_dot(s) and len(strokes) > 1)):
                deferred.append(s)
            else:
                main.append(s)
        glyphs[ch] = Glyph(tuple(main), tuple(deferred), float(g.char_width), is_letter)
    x = glyphs["x"]
    x_height = _BASELINE - min(float(s[:, 1].min()) for s in x.main + x.deferred)
    kind = "script" if name in SCRIPT_FONTS else "print"
    return Font(name, glyphs, x_height, kind)


@lru_cache(maxsize=1)
def word_list() -> tuple[str, ...]:
    """The bundled list of common lowercase English words (``vrnn/data/words.txt``)."""
    text = resources.files("vrnn").joinpath("data/words.txt").read_text(encoding="utf-8")
    return tuple(w for w in text.split() if w.isalpha())


# ---------------------------------------------------------------------- writers
@dataclass(frozen=True)
class SyntheticWriter:
    """A writer's style, held for all of that writer's lines.

    Lengths marked *font units* are in the Hershey grid (the script x-height is 9
    units); ``x_height`` is in output units (pixel-like).
    """

    writer_id: str
    font: str = "cursive"
    x_height: float = 36.0  # output units
    slant_deg: float = 8.0  # extra shear; positive leans right
    width: float = 1.0  # horizontal scale
    letter_spacing: float = 0.0  # font units added after each letter
    word_spacing: float = 9.0  # font units between words
    letter_jitter: float = 0.04  # relative per-letter size jitter (std)
    ascender: float = 0.8  # scale of what rises above the x-height (Hershey's are tall)
    descender: float = 0.85  # scale of what hangs below the baseline
    baseline_slope: float = 0.0  # dy/dx of the line
    baseline_wave: float = 0.05  # amplitude of the baseline drift, in x-heights
    deform_amp: float = 0.6  # smooth glyph deformation amplitude, font units
    deform_wavelength: float = 18.0  # its wavelength, font units
    deform_seed: int = 0  # phases and directions of the deformation field
    roundness: float = 1.0  # smoothing half-width, font units
    speed: float = 14.0  # pen-down speed on gentle curves, x-heights per second
    speed_gain: float = 1.0  # exponent scale on the curvature law (0 = constant speed)
    tremor: float = 0.01  # tremor amplitude, in x-heights
    lift_prob: float = 0.0  # chance of a pen lift between two joined letters
    device: str = "pen"  # "pen" (tablet: 100 Hz clock) or "mouse" (browser pointer events)
    wobble: float = 0.0  # slow hand drift of a mouse, in x-heights (0 for a pen)

    @classmethod
    def random(cls, rng: np.random.Generator, writer_id: str = "syn-custom") -> SyntheticWriter:
        """Draw a style; the ranges are chosen to look like real lines of handwriting.

        App users mostly write with a mouse and often print, so 40% of the writers use a
        mouse (slower, with a flatter speed profile, uneven pointer-event timing, integer
        pixels and a slow drift of the hand; 60% of them print) and half of the pen
        writers print.
        """
        u = rng.uniform
        mouse = u() < MOUSE_SHARE
        printed = u() < (MOUSE_PRINT_SHARE if mouse else PRINT_SHARE)
        font = str(rng.choice(PRINT_FONTS)) if printed else str(rng.choice(SCRIPT_FONTS))
        shape = dict(
            writer_id=writer_id,
            font=font,
            x_height=float(np.exp(u(np.log(20.0), np.log(60.0)))),
            slant_deg=float(np.clip(rng.normal(4.0, 7.5), -14.0, 24.0)),
            width=float(np.exp(rng.normal(0.0, 0.13))),
            letter_spacing=float(u(-1.5, 2.5)) + (float(u(0.0, 2.5)) if printed else 0.0),
            word_spacing=float(u(8.0, 16.0)),
            letter_jitter=float(u(0.01, 0.07)),
            ascender=float(u(0.55, 1.0)),
            descender=float(u(0.6, 1.0)),
            baseline_slope=float(rng.normal(0.0, 0.015)),
            baseline_wave=float(u(0.0, 0.12)),
            deform_amp=float(u(0.2, 1.1)),
            deform_wavelength=float(u(10.0, 28.0)),
            deform_seed=int(rng.integers(2**31)),
        )
        if mouse:
            return cls(
                **shape,
                roundness=float(u(0.3, 0.9)),
                speed=float(u(4.0, 9.0)),
                speed_gain=float(u(0.2, 0.6)),
                tremor=float(np.exp(u(np.log(0.002), np.log(0.006)))),
                lift_prob=float(u(0.05, 0.3)),
                device="mouse",
                wobble=float(u(0.015, 0.05)),
            )
        return cls(
            **shape,
            roundness=float(u(0.6, 1.6)),
            speed=float(u(11.0, 22.0)),
            speed_gain=float(u(0.7, 1.2)),
            tremor=float(np.exp(u(np.log(0.002), np.log(0.012)))),
            lift_prob=float(u(0.0, 0.12)) if u() < 0.4 else 0.0,
        )


def writer_split(index: int) -> str:
    """The split of writer ``index``: 90% ``train``, 5% ``valid``, 5% ``test``."""
    r = index % 20
    return "valid" if r == 18 else "test" if r == 19 else "train"


def writers_in_split(split: str | None) -> list[int]:
    """Writer indices of a split (all writers for ``None``)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be None or one of {SPLITS}, got {split!r}")
    return [i for i in range(NUM_WRITERS) if split is None or writer_split(i) == split]


@cache
def writer_style(index: int) -> SyntheticWriter:
    """The fixed style of writer ``syn-{index:04d}`` (independent of any corpus seed)."""
    rng = np.random.default_rng([_STYLE_SEED, index])
    return SyntheticWriter.random(rng, writer_id=f"syn-{index:04d}")


# ------------------------------------------------------------------------ text
def random_text(rng: np.random.Generator, *, min_words: int = 2, max_words: int = 6, max_chars: int = 40) -> str:
    """A line of 2-6 common words, about 10-40 characters, sometimes capitalized / punctuated."""
    words = word_list()
    target = int(rng.integers(min(10, max_chars), max_chars + 1))
    line: list[str] = []
    while len(line) < max_words:
        w = words[int(rng.integers(len(words)))]
        length = len(" ".join(line + [w]))
        if length > max_chars and len(line) >= min_words:
            break
        if length > max_chars:  # too long for a short line: try another word
            continue
        line.append(w)
        if length >= target and len(line) >= min_words:
            break
    if rng.random() < 0.35:
        line[0] = line[0].capitalize()
    text = " ".join(line)
    if rng.random() < 0.25 and len(text) < max_chars:
        text += str(rng.choice(list(".....,!?")))
    return text


#: What a corpus item is, with its share: what people write in the app, not only lines.
TEXT_KINDS = (("line", 0.5), ("words", 0.2), ("char", 0.15), ("number", 0.15))


def random_item(rng: np.random.Generator) -> str:
    """One thing to write: a line of 2-6 words (50%), one or two short words (20%), a
    single letter or digit (15%) or a number (15%)."""
    kinds, shares = zip(*TEXT_KINDS)
    kind = kinds[int(rng.choice(len(kinds), p=np.asarray(shares)))]
    if kind == "line":
        return random_text(rng)
    if kind == "words":
        return random_text(rng, min_words=1, max_words=2, max_chars=14)
    if kind == "char":
        r = rng.random()
        pool = "0123456789" if r < 0.3 else "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if r < 0.45 else "abcdefghijklmnopqrstuvwxyz"
        return pool[int(rng.integers(len(pool)))]
    digits = int(rng.integers(1, 5))
    number = str(int(rng.integers(10 ** (digits - 1) if digits > 1 else 0, 10**digits)))
    if rng.random() < 0.25:
        number += " " + str(int(rng.integers(0, 100)))
    return number


# -------------------------------------------------------------- line geometry
@dataclass
class _Layout:
    """Stroke pieces of a line in writing order (font units, y down)."""

    points: np.ndarray  # (M, 2) deformed, placed points
    piece: np.ndarray  # (M,) piece id of each point
    word: np.ndarray  # (P,) word index of each piece
    joinable: np.ndarray  # (P,) letter stroke written in the flow of the word
    glyph: np.ndarray  # (P,) index of the character each piece belongs to
    raw_ends: np.ndarray  # (P, 2, 2) undeformed first and last point: joins follow the font


def _layout(text: str, style: SyntheticWriter, font: Font, rng: np.random.Generator) -> _Layout:
    """Place the glyph strokes of ``text``; each word's dots and crossings follow its main strokes."""
    jitter = rng.normal(0.0, 1.0, size=(len(text), 3))
    pieces: list[np.ndarray] = []  # glyph strokes in their own coordinates, writing order
    char_of: list[int] = []
    word_of: list[int] = []
    joinable: list[bool] = []
    later: list[tuple[np.ndarray, int]] = []
    x_left = np.zeros(len(text))
    x = float(rng.uniform(0.0, 2.0))
    word = 0

    def flush_later() -> None:
        for p, ci in later:
            pieces.append(p)
            char_of.append(ci)
            word_of.append(word)
            joinable.append(False)
        later.clear()

    for i, ch in enumerate(text):
        if ch == " ":
            flush_later()
            word += 1
            x += style.word_spacing * (1.0 + 0.15 * jitter[i, 0])
            continue
        glyph = font.glyphs.get(ch)
        if glyph is None:  # a character the font lacks: leave its space blank
            x += font.x_height
            continue
        x_left[i] = x
        pieces.extend(glyph.main)
        char_of.extend([i] * len(glyph.main))
        word_of.extend([word] * len(glyph.main))
        joinable.extend([glyph.is_letter] * len(glyph.main))
        later.extend((d, i) for d in glyph.deferred)
        x += glyph.width * (1.0 + style.letter_jitter * jitter[i, 0])
        x += style.letter_spacing * (1.0 + 0.3 * jitter[i, 2])
    flush_later()
    if not pieces:
        raise ValueError(f"nothing to write in {text!r}")

    counts = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    local = _proportions(np.concatenate(pieces), font, style)
    char = np.repeat(np.asarray(char_of), counts)
    scale = (1.0 + style.letter_jitter * jitter[:, 0])[char, None]
    shift = np.column_stack([x_left, _BASELINE + 0.3 * style.letter_jitter * font.x_height * jitter[:, 1]])[char]
    raw = (local - (0.0, _BASELINE)) * scale + shift
    placed = (_deform_field(style, rng)(local) - (0.0, _BASELINE)) * scale + shift
    last = np.cumsum(counts) - 1
    return _Layout(
        points=placed,
        piece=np.repeat(np.arange(len(pieces)), counts),
        word=np.asarray(word_of),
        joinable=np.asarray(joinable),
        glyph=np.asarray(char_of),
        raw_ends=np.stack([raw[last - counts + 1], raw[last]], axis=1),
    )


def _proportions(p: np.ndarray, font: Font, style: SyntheticWriter) -> np.ndarray:
    """Rescale ascenders (above the x-height line) and descenders (below the baseline)."""
    x_line = _BASELINE - font.x_height
    y = p[:, 1]
    y = np.where(y < x_line, x_line + (y - x_line) * style.ascender, y)
    y = np.where(y > _BASELINE, _BASELINE + (y - _BASELINE) * style.descender, y)
    return np.column_stack([p[:, 0], y])


def _deform_field(style: SyntheticWriter, rng: np.random.Generator):
    """The writer's smooth displacement field (a few random plane waves), slightly varied per line."""
    srng = np.random.default_rng(style.deform_seed)
    k = 3
    angles = srng.uniform(0, 2 * np.pi, k)
    freq = 2 * np.pi / (style.deform_wavelength * srng.uniform(0.7, 1.4, k))
    waves = np.stack([np.cos(angles), np.sin(angles)], axis=1) * freq[:, None]  # (k, 2)
    phases = srng.uniform(0, 2 * np.pi, k) + rng.normal(0.0, 0.35, k)
    amps = srng.normal(0.0, 1.0, (k, 2)) * (style.deform_amp / np.sqrt(k))  # (k, 2)

    def apply(p: np.ndarray) -> np.ndarray:
        return p + np.sin(p @ waves.T + phases) @ amps

    return apply


def _stroke_ids(layout: _Layout, font: Font, style: SyntheticWriter, rng) -> np.ndarray:
    """Merge pieces into pen-down strokes; returns the stroke id of every point.

    Consecutive letter pieces of one word join when the font's own (undeformed) end
    and start are close, unless the writer happens to lift the pen (``lift_prob``).
    """
    gap = np.linalg.norm(layout.raw_ends[1:, 0] - layout.raw_ends[:-1, 1], axis=1)
    between, within = _JOIN_GAP[font.kind]
    same_letter = layout.glyph[1:] == layout.glyph[:-1]
    join = (
        (layout.word[1:] == layout.word[:-1])
        & layout.joinable[1:]
        & layout.joinable[:-1]
        & (gap <= np.where(same_letter, within, between))
        & (same_letter | (rng.random(len(gap)) >= style.lift_prob))
    )
    stroke_of_piece = np.concatenate([[0], np.cumsum(~join)])
    return stroke_of_piece[layout.piece]


@dataclass
class _Runs:
    """Bookkeeping for points grouped into consecutive strokes (ids 0, 1, 2, ... in order)."""

    first: np.ndarray  # (N,) bool: first point of its stroke
    last: np.ndarray  # (N,) bool: last point of its stroke
    starts: np.ndarray  # (S,) index of each stroke's first point
    length: np.ndarray  # (S,) points per stroke

    @classmethod
    def of(cls, ids: np.ndarray) -> _Runs:
        change = ids[1:] != ids[:-1]
        first = np.concatenate([[True], change])
        last = np.concatenate([change, [True]])
        starts = np.flatnonzero(first)
        return cls(first, last, starts, np.diff(np.append(starts, len(ids))))

    def local_cumsum(self, values: np.ndarray) -> np.ndarray:
        """Cumulative sum restarting at each stroke (``values`` at a stroke's first point is ignored)."""
        v = np.where(self.first, 0.0, values)
        c = np.cumsum(v)
        return c - np.repeat(c[self.starts], self.length)

    def step_lengths(self, points: np.ndarray) -> np.ndarray:
        """Distance from the previous point of the same stroke (0 at stroke starts)."""
        d = np.empty(len(points))
        d[0] = 0.0
        diff = points[1:] - points[:-1]
        d[1:] = np.hypot(diff[:, 0], diff[:, 1])
        d[self.first] = 0.0
        return d


def _densify(points: np.ndarray, ids: np.ndarray, step: float):
    """Resample every stroke every ``step`` (about) along its arc length.

    Returns ``(points, stroke id per point, index within stroke, points per stroke)``.
    """
    runs = _Runs.of(ids)
    d = runs.step_lengths(points)
    keep = runs.first | (d > 1e-9)  # drop repeated points so arc length strictly increases
    points, ids = points[keep], ids[keep]
    runs = _Runs.of(ids)
    s_local = runs.local_cumsum(runs.step_lengths(points))
    lengths = s_local[np.flatnonzero(runs.last)]
    counts = np.where(lengths > 0, np.ceil(lengths / step).astype(np.int64) + 1, 1)
    # one np.interp for all strokes: offset each stroke's arc length by its id * big
    big = float(lengths.max()) + 1.0
    key = s_local + ids * big
    stroke = np.repeat(np.arange(len(counts)), counts)
    k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    q = k * (lengths / np.maximum(counts - 1, 1))[stroke] + stroke * big
    out = np.column_stack([np.interp(q, key, points[:, 0]), np.interp(q, key, points[:, 1])])
    return out, stroke, k, counts


def _smooth(points: np.ndarray, stroke: np.ndarray, k: np.ndarray, counts: np.ndarray, half_width: int, passes: int = 2):
    """Moving average within each stroke; the window shrinks near the ends so endpoints stay put."""
    if half_width < 1:
        return points
    w = np.minimum(half_width, np.minimum(k, counts[stroke] - 1 - k))
    i = np.arange(len(points))
    lo, hi, n = i - w, i + w + 1, (2 * w + 1)[:, None]
    c = np.zeros((len(points) + 1, 2))
    for _ in range(passes):
        np.cumsum(points, axis=0, out=c[1:])
        points = (c[hi] - c[lo]) / n
    return points


def _curvature(points: np.ndarray, runs: _Runs) -> np.ndarray:
    """Unsigned curvature (1 / radius) at every point; stroke ends copy their inner neighbour."""
    v = points[1:] - points[:-1]
    seg = np.hypot(v[:, 0], v[:, 1])
    a, b = v[:-1], v[1:]
    turn = np.abs(np.arctan2(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1]))
    kappa = np.zeros(len(points))
    kappa[1:-1] = turn / np.maximum(0.5 * (seg[:-1] + seg[1:]), 1e-9)
    # the turn at a stroke's end spans the pen-up jump: take the neighbour inside the stroke
    ends = runs.first | runs.last
    kappa[ends] = 0.0
    inner_next = np.append(kappa[1:], 0.0)
    inner_prev = np.insert(kappa[:-1], 0, 0.0)
    kappa[runs.first] = inner_next[runs.first]
    kappa[runs.last & ~runs.first] = inner_prev[runs.last & ~runs.first]
    return kappa


def pen_speed(kappa: np.ndarray, *, base_speed: float, ref_radius: float, gain: float = 1.0,
              lo: float = 0.25, hi: float = 2.2) -> np.ndarray:
    """Two-thirds power law: ``v = base_speed * (kappa * ref_radius) ** (-gain / 3)``, clipped.

    ``base_speed`` is the speed on a curve of radius ``ref_radius``; the ratio to it is
    clipped to ``[lo, hi]`` (straight lines would otherwise be infinitely fast).
    """
    ratio = np.power(np.maximum(kappa * ref_radius, 1e-12), -gain / 3.0)
    return base_speed * np.clip(ratio, lo, hi)


def _ramp(dist_to_end: np.ndarray, length: np.ndarray, floor: float = 0.15) -> np.ndarray:
    """Speed factor near a stroke end: smoothstep from ``floor`` (at the end) to 1 (``length`` away)."""
    u = np.clip(dist_to_end / np.maximum(length, 1e-9), 0.0, 1.0)
    return floor + (1.0 - floor) * u * u * (3.0 - 2.0 * u)


def _timing(points: np.ndarray, runs: _Runs, style: SyntheticWriter):
    """Local time (seconds since its stroke began) of every dense point, and stroke durations.

    Speed = two-thirds power law of the curvature, times ramps at both stroke ends.
    """
    xh = style.x_height
    v = pen_speed(_curvature(points, runs), base_speed=style.speed * xh, ref_radius=0.5 * xh, gain=style.speed_gain)
    d = runs.step_lengths(points)
    s_in = runs.local_cumsum(d)
    lengths = s_in[np.flatnonzero(runs.last)]
    s_out = np.repeat(lengths, runs.length) - s_in
    ramp_len = np.repeat(np.minimum(0.45 * xh, 0.5 * lengths), runs.length)
    v = v * _ramp(np.minimum(s_in, s_out), ramp_len)
    dt = np.empty(len(points))
    dt[0] = 0.0
    dt[1:] = d[1:] / (0.5 * (v[1:] + v[:-1])) + 1e-9
    t_local = runs.local_cumsum(dt)
    return t_local, t_local[np.flatnonzero(runs.last)]


def pen_times(points: np.ndarray, style: SyntheticWriter) -> np.ndarray:
    """Seconds at which a pen following ``style``'s kinematics passes each point of one
    continuous pen-down path ``(n, 2)`` (output units, densely sampled): two-thirds
    power law in curves, smooth ramps at both ends. Starts at 0."""
    pts = np.asarray(points, dtype=np.float64)
    t_local, _ = _timing(pts, _Runs.of(np.zeros(len(pts), dtype=np.int64)), style)
    return t_local


def _sample(points, runs: _Runs, t_local, durations, style: SyntheticWriter, rng):
    """Sample each stroke on the tablet's clock; pen-up travel between strokes takes time.

    Every stroke starts on a clock tick and gets ``ceil(duration / dt) + 1`` samples (its
    last one at the stroke's end point), so times are strictly increasing across strokes.
    Returns ``(xy, times, samples per stroke)``.
    """
    dt = 1.0 / SAMPLE_RATE_HZ
    n_samples = np.where(durations > 0, np.ceil(durations / dt - 1e-9).astype(np.int64) + 1, 1)
    # pen-up: a short pause plus travel at about twice the pen-down speed
    ends = np.flatnonzero(runs.last)
    jump = points[runs.starts[1:]] - points[ends[:-1]]
    up_time = rng.uniform(0.04, 0.12, len(jump)) + np.hypot(jump[:, 0], jump[:, 1]) / (2.0 * style.speed * style.x_height)
    up_ticks = np.maximum(1, np.round(up_time / dt).astype(np.int64))
    first_tick = np.concatenate([[0], np.cumsum(n_samples[:-1] - 1 + up_ticks)])
    which = np.repeat(np.arange(len(n_samples)), n_samples)
    k = np.arange(int(n_samples.sum())) - np.repeat(np.cumsum(n_samples) - n_samples, n_samples)
    tau = np.minimum(k * dt, durations[which])
    # one np.interp for all strokes: offset each stroke's clock by its index * big
    big = float(durations.max()) + 1.0
    key = t_local + np.repeat(np.arange(len(n_samples)), runs.length) * big
    q = tau + which * big
    xy = np.column_stack([np.interp(q, key, points[:, 0]), np.interp(q, key, points[:, 1])])
    return xy, (first_tick[which] + k) * dt, n_samples


def _sample_mouse(points, runs: _Runs, t_local, durations, style: SyntheticWriter, rng):
    """Sample each stroke at browser pointer events: about ``MOUSE_EVENT_HZ`` with uneven
    gaps (lognormal, and now and then a dropped frame or two), the last event at the
    stroke's end point; pen-up travel as for a pen. Returns ``(xy, times, samples per stroke)``."""
    base = 1.0 / MOUSE_EVENT_HZ
    ends = np.flatnonzero(runs.last)
    jump = points[runs.starts[1:]] - points[ends[:-1]]
    up_time = rng.uniform(0.08, 0.25, len(jump)) + np.hypot(jump[:, 0], jump[:, 1]) / (2.0 * style.speed * style.x_height)
    xy, times, counts = [], [], []
    start = 0.0
    for k, (first, n, dur) in enumerate(zip(runs.starts, runs.length, durations)):
        m = int(dur / base * 1.5) + 4
        gaps = base * np.exp(rng.normal(0.0, 0.3, m)) * np.where(rng.random(m) < 0.04, rng.integers(2, 4, m), 1)
        tau = np.cumsum(gaps)
        tau = np.concatenate([[0.0], tau[tau < dur - 0.3 * base], [dur]]) if dur > 0 else np.zeros(1)
        seg = slice(first, first + n)
        xy.append(np.column_stack([np.interp(tau, t_local[seg], points[seg, 0]),
                                   np.interp(tau, t_local[seg], points[seg, 1])]))
        times.append(start + tau)
        counts.append(len(tau))
        if k < len(up_time):
            start += dur + up_time[k]
    return np.concatenate(xy), np.concatenate(times), np.asarray(counts)


def _hand_drift(n: int, amplitude: float, rng, span: int = 15) -> np.ndarray:
    """Slow random drift of a mouse hand: white noise smoothed over ``span`` samples, ``(n, 2)``."""
    if amplitude <= 0 or n == 0:
        return np.zeros((n, 2))
    white = rng.normal(0.0, 1.0, (n + 2 * span, 2))
    c = np.cumsum(white, axis=0)
    smooth = (c[2 * span:] - c[:-2 * span]) / np.sqrt(2 * span)
    return amplitude * smooth[:n]


def generate_line(text: str, style: SyntheticWriter, rng: np.random.Generator) -> Ink:
    """One line of synthetic handwriting of ``text`` in ``style`` (``label=text``, times set)."""
    font = load_font(style.font)
    # per-line variation of the writer's habits
    slant = math.radians(style.slant_deg + rng.normal(0.0, 1.5))
    xh = style.x_height * float(np.exp(rng.normal(0.0, 0.04)))
    line_style = replace(style, x_height=xh, speed=style.speed * float(np.exp(rng.normal(0.0, 0.08))))

    layout = _layout(text, line_style, font, rng)
    ids = _stroke_ids(layout, font, style, rng)
    dense, stroke, k, counts = _densify(layout.points, ids, _DENSE_STEP)
    dense = _smooth(dense, stroke, k, counts, round(style.roundness / _DENSE_STEP))

    # font units -> output units: slant about the baseline, width, size, drifting baseline
    scale = xh / font.x_height
    x = dense[:, 0] * style.width
    y = dense[:, 1] - _BASELINE
    x = (x - math.tan(slant) * y) * scale
    y = y * scale
    wave_len = xh * rng.uniform(12.0, 30.0)
    y = y + style.baseline_slope * x + style.baseline_wave * xh * np.sin(2 * np.pi * x / wave_len + rng.uniform(0, 2 * np.pi))
    origin = rng.uniform((0.0, -0.3 * xh), (0.5 * xh, 0.3 * xh))
    dense = np.column_stack([x, y]) + origin

    runs = _Runs.of(stroke)
    t_local, durations = _timing(dense, runs, line_style)
    sampler = _sample_mouse if style.device == "mouse" else _sample
    xy, times, n_samples = sampler(dense, runs, t_local, durations, line_style, rng)
    noise = rng.normal(0.0, style.tremor * xh, xy.shape)
    noise[1:-1] = 0.25 * noise[:-2] + 0.5 * noise[1:-1] + 0.25 * noise[2:]
    xy = xy + noise + _hand_drift(len(xy), style.wobble * xh, rng)
    if style.device == "mouse":
        xy = np.round(xy)  # pointer events land on whole pixels
    cuts = np.cumsum(n_samples)[:-1]
    return Ink(strokes=np.split(xy, cuts), times=np.split(times, cuts), label=text, writer=style.writer_id)


# ---------------------------------------------------------------------- corpus
def writer_lines(writers: list[int], per_writer: int, *, seed: int = 0) -> list[Ink]:
    """``per_writer`` lines of random text (:func:`random_text`) by each writer index in
    ``writers``, writer by writer; line ``j`` of writer ``w`` is seeded ``[seed, w, j]``."""
    inks = []
    for w in writers:
        style = writer_style(w)
        for j in range(per_writer):
            rng = np.random.default_rng([seed, w, j])
            inks.append(generate_line(random_text(rng), style, rng))
    return inks


def synthetic_inks(n: int, *, seed: int = 0, split: str | None = None) -> list[Ink]:
    """``n`` lines of the synthetic handwriting corpus, deterministic for ``seed``.

    Each item picks a writer (from ``split``'s writers when given: ``"train"``,
    ``"valid"`` or ``"test"``, disjoint by writer) and a text (:func:`random_item`): a
    line of 2-6 common words, one or two words, a single letter or digit, or a number.
    ``label`` is the text, ``writer`` the writer id (``"syn-0042"``), ``times`` are
    seconds at 100 Hz. Line ``i`` depends only on ``(seed, split, i)``, so the first
    ``k`` lines of a larger corpus equal ``synthetic_inks(k, seed=seed, split=split)``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pool = writers_in_split(split)
    code = _SPLIT_CODE[split]
    inks = []
    for i in range(n):
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, code, i])
        style = writer_style(pool[int(rng.integers(len(pool)))])
        inks.append(generate_line(random_item(rng), style, rng))
    return inks


# ------------------------------------------------------------------ preview
def main(argv: list[str] | None = None) -> None:
    """``python -m vrnn.synthetic --png grid.png``: render a preview grid of the corpus."""
    import argparse

    from PIL import Image

    from vrnn.render import render_inks_png

    ap = argparse.ArgumentParser(description="Render sample lines of the synthetic handwriting corpus to PNG.")
    ap.add_argument("--png", required=True, help="output PNG path")
    ap.add_argument("--writers", default="0,3,6,7,10,12,21,24", help="comma-separated writer numbers")
    ap.add_argument("--lines-per-writer", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cols", type=int, default=2)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--color-strokes", action="store_true", help="alternate colours per stroke to show pen lifts")
    args = ap.parse_args(argv)

    inks = writer_lines([int(v) for v in args.writers.split(",")], args.lines_per_writer, seed=args.seed)
    captions = []
    for ink in inks:
        style = writer_style(int(ink.writer.split("-")[1]))
        captions.append(f"{ink.label}   [{style.writer_id}: {style.font}, x-height {style.x_height:.0f}, "
                        f"slant {style.slant_deg:+.0f}\u00b0]")
    colors = [["#202020", "#1f77b4", "#d62728"]] * len(inks) if args.color_strokes else None
    img = render_inks_png(inks, None, width=args.width, cols=args.cols, cell_height=args.width // args.cols // 5,
                          colors=colors, labels=captions, line_width=1.6)
    # a 128-colour palette keeps the anti-aliasing and makes the file about 3x smaller
    img.quantize(colors=128, dither=Image.Dither.NONE).save(args.png, optimize=True)
    print(f"wrote {len(inks)} lines to {args.png}")


if __name__ == "__main__":
    main()
