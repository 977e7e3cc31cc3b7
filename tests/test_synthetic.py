"""The synthetic handwriting corpus: determinism, splits, timing, geometry and pen order."""

import re
from dataclasses import replace

import numpy as np
import pytest

import vrnn
from vrnn.synthetic import (
    NUM_WRITERS,
    PRINT_FONTS,
    SAMPLE_RATE_HZ,
    SyntheticWriter,
    generate_line,
    pen_speed,
    pen_times,
    random_item,
    random_text,
    synthetic_inks,
    word_list,
    writer_split,
    writer_style,
    writers_in_split,
)

# a plain, upright, tremor-free writer so geometric checks are easy to read
PLAIN = SyntheticWriter(
    writer_id="syn-test", font="cursive", x_height=40.0, slant_deg=0.0, letter_jitter=0.0,
    baseline_slope=0.0, baseline_wave=0.0, deform_amp=0.0, tremor=0.0, lift_prob=0.0,
)


def _same(a, b):
    return (
        a.label == b.label and a.writer == b.writer and len(a.strokes) == len(b.strokes)
        and all(np.array_equal(x, y) for x, y in zip(a.strokes, b.strokes))
        and all(np.array_equal(x, y) for x, y in zip(a.times, b.times))
    )


def test_public_name_and_determinism():
    a = vrnn.synthetic_inks(4, seed=0)
    b = synthetic_inks(4, seed=0)
    assert len(a) == 4 and all(_same(x, y) for x, y in zip(a, b))
    c = synthetic_inks(4, seed=1)
    assert not any(_same(x, y) for x, y in zip(a, c))


def test_prefix_stable():
    short, long = synthetic_inks(3, seed=5), synthetic_inks(7, seed=5)
    assert all(_same(x, y) for x, y in zip(short, long[:3]))


def _kind(label: str) -> str:
    words = set(word_list())
    if len(label) == 1 and label.isalnum():
        return "char"
    if re.fullmatch(r"\d{1,4}( \d{1,2})?", label):
        return "number"
    tokens = label.rstrip(".,!?").split(" ")
    assert all(t.lower() in words for t in tokens), label
    if len(tokens) <= 2 and len(label) <= 14:
        return "words"  # a short line of two words can look like this too
    assert 2 <= len(tokens) <= 6 and 10 <= len(label) <= 40, label
    return "line"


def test_metadata_and_text():
    words = set(word_list())
    assert len(words) >= 2000 and all(w.isalpha() and w.islower() for w in words)
    for ink in synthetic_inks(30, seed=2):
        assert re.fullmatch(r"syn-\d{4}", ink.writer)
        _kind(ink.label)
        assert ink.times is not None and len(ink.times) == len(ink.strokes)


def test_items_cover_what_people_write():
    """Lines, short words, single letters / digits and numbers, in about their shares."""
    rng = np.random.default_rng(0)
    kinds = [_kind(random_item(rng)) for _ in range(1000)]
    share = {k: kinds.count(k) / len(kinds) for k in ("line", "words", "char", "number")}
    assert 0.40 < share["line"] < 0.55 and 0.17 < share["words"] < 0.32
    assert 0.11 < share["char"] < 0.19 and 0.11 < share["number"] < 0.19
    chars = [t for t in (random_item(rng) for _ in range(3000)) if len(t) == 1]
    assert any(c.isdigit() for c in chars) and any(c.isupper() for c in chars) and any(c.islower() for c in chars)


def test_print_as_often_as_cursive_and_mouse_writers():
    styles = [writer_style(i) for i in range(NUM_WRITERS)]
    printed = np.mean([s.font in PRINT_FONTS for s in styles])
    mouse = np.mean([s.device == "mouse" for s in styles])
    assert 0.45 < printed < 0.62 and 0.32 < mouse < 0.48
    for split in ("train", "valid", "test"):  # every split holds both devices and both hands
        ss = [styles[i] for i in writers_in_split(split)]
        assert {s.device for s in ss} == {"pen", "mouse"} and {s.font in PRINT_FONTS for s in ss} == {True, False}


def test_mouse_kinematics_differ_from_a_pen():
    pen = replace(PLAIN, tremor=0.005)
    mouse = replace(PLAIN, device="mouse", speed=6.0, speed_gain=0.4, wobble=0.03)
    rng = np.random.default_rng(4)
    a, b = generate_line("minimum loop", pen, rng), generate_line("minimum loop", mouse, rng)
    dt_pen, dt_mouse = np.diff(a.times[0]), np.diff(b.times[0])
    assert np.allclose(dt_pen, 1.0 / SAMPLE_RATE_HZ)  # a tablet's clock
    assert 0.013 < np.median(dt_mouse) < 0.021 and dt_mouse.std() > 0.003  # uneven pointer events
    assert np.all(dt_mouse > 0)
    assert all(np.array_equal(s, np.round(s)) for s in b.strokes)  # whole pixels
    duration = lambda ink: ink.times[-1][-1] - ink.times[0][0]  # noqa: E731
    assert duration(b) > 1.5 * duration(a)  # a mouse writes slower
    # the same text at the same size: the hand's drift moves points, but not by a letter
    assert abs(np.ptp(a.points[:, 0]) - np.ptp(b.points[:, 0])) < 1.0 * PLAIN.x_height


def test_splits_are_disjoint_by_writer():
    sets = {s: set(writers_in_split(s)) for s in ("train", "valid", "test")}
    assert not (sets["train"] & sets["valid"] or sets["train"] & sets["test"] or sets["valid"] & sets["test"])
    assert set().union(*sets.values()) == set(range(NUM_WRITERS))
    assert len(sets["train"]) == 0.9 * NUM_WRITERS and len(sets["test"]) == 0.05 * NUM_WRITERS
    for split in ("train", "valid", "test"):
        for ink in synthetic_inks(15, seed=3, split=split):
            assert writer_split(int(ink.writer[4:])) == split
    with pytest.raises(ValueError):
        synthetic_inks(1, split="validation")


def test_writer_style_is_fixed_and_varied():
    assert writer_style(7) == writer_style(7)
    styles = [writer_style(i) for i in range(60)]
    assert np.std([s.slant_deg for s in styles]) > 4.0  # degrees
    assert np.ptp([s.x_height for s in styles]) > 20.0
    assert {s.font for s in styles} >= {"cursive", "scripts"}
    assert all(20 <= s.x_height <= 60 for s in styles)


def test_times_strictly_increasing_on_a_fixed_clock():
    dt = 1.0 / SAMPLE_RATE_HZ
    for ink in synthetic_inks(25, seed=4):
        t = np.concatenate(ink.times)
        assert t[0] == 0.0 and np.all(np.diff(t) > 0)
        if writer_style(int(ink.writer[4:])).device == "pen":
            ticks = t / dt
            assert np.allclose(ticks, np.round(ticks), atol=1e-6)  # tablet-like: one sample per tick
        assert np.isfinite(ink.points).all() and np.isfinite(t).all()
        # pen-up travel takes time: a gap of at least one tick between strokes
        for a, b in zip(ink.times[:-1], ink.times[1:]):
            assert b[0] - a[-1] >= dt - 1e-9


def test_points_per_letter_in_a_sane_range():
    per_char = [ink.num_points / len(ink.label.replace(" ", "")) for ink in synthetic_inks(60, seed=6)]
    assert 8 < min(per_char) and max(per_char) < 100  # a slow mouse "K" takes about 85
    assert 15 < np.median(per_char) < 45  # IAM-OnDB has about 25 points per character


def test_y_points_down():
    ink = generate_line("o l g", PLAIN, np.random.default_rng(0))
    o, l, g = ink.strokes
    xh = PLAIN.x_height
    # same baseline for "o" and "l"; the ascender of "l" has smaller y, the descender of "g" larger
    assert abs(o[:, 1].max() - l[:, 1].max()) < 0.25 * xh
    assert l[:, 1].min() < o[:, 1].min() - 0.5 * xh
    assert g[:, 1].max() > o[:, 1].max() + 0.4 * xh
    assert 0.7 * xh < np.ptp(o[:, 1]) < 1.3 * xh
    # the print fonts too (their ascenders are shorter: about half an x-height)
    o, l, *g = generate_line("o l g", replace(PLAIN, font="futural"), np.random.default_rng(0)).strokes
    g = np.concatenate(g)  # a printed "g" may take two strokes
    assert abs(o[:, 1].max() - l[:, 1].max()) < 0.25 * xh
    assert l[:, 1].min() < o[:, 1].min() - 0.3 * xh
    assert g[:, 1].max() > o[:, 1].max() + 0.3 * xh


def test_letters_joined_and_dots_after_the_word():
    ink = generate_line("quit minimum", PLAIN, np.random.default_rng(1))
    # "quit": one pen-down stroke, then its i-dot and t-cross; "minimum": one stroke, then 2 dots
    assert len(ink.strokes) == 3 + 3
    quit, dot, cross, minimum = ink.strokes[0], ink.strokes[1], ink.strokes[2], ink.strokes[3]
    xh = PLAIN.x_height
    assert np.ptp(quit[:, 0]) > 2 * xh and np.ptp(minimum[:, 0]) > 4 * xh
    assert np.ptp(dot, axis=0).max() < 0.3 * xh  # a tap
    assert np.ptp(cross[:, 0]) > 2 * np.ptp(cross[:, 1])  # a roughly horizontal bar
    # written after the word: the pen goes back left, to points above the word's body
    for mark in (dot, cross):
        assert quit[:, 0].min() < mark[:, 0].mean() < quit[-1, 0]
        assert mark[:, 1].mean() < np.median(quit[:, 1])
    for d in ink.strokes[4:]:
        assert minimum[:, 0].min() < d[:, 0].mean() < minimum[-1, 0]


def test_print_writers_lift_between_letters():
    printer = replace(PLAIN, font="futural")
    ink = generate_line("mom", printer, np.random.default_rng(2))
    assert len(ink.strokes) >= 3


def test_two_thirds_power_law():
    k = np.logspace(-3, 0, 50)
    v = pen_speed(k, base_speed=100.0, ref_radius=1.0, lo=0.01, hi=100.0)
    assert np.allclose(np.polyfit(np.log(k), np.log(v), 1)[0], -1 / 3)
    clipped = pen_speed(np.array([0.0, 1e9]), base_speed=100.0, ref_radius=1.0, lo=0.25, hi=2.0)
    assert np.allclose(clipped, [200.0, 25.0])


def test_pen_slower_in_curves_than_on_straights():
    xh = PLAIN.x_height
    straight = np.column_stack([np.linspace(-10 * xh, 0, 400), np.zeros(400)])
    a = np.linspace(0, 4 * np.pi, 400)[1:]
    r = 0.25 * xh  # two tight loops
    loops = np.column_stack([r * np.sin(a), r - r * np.cos(a)])
    path = np.concatenate([straight, loops, straight[::-1][1:] * (-1, 1) + (0, 0)])
    t = pen_times(path, PLAIN)
    assert np.all(np.diff(t) > 0)
    speed = np.hypot(*np.diff(path, axis=0).T) / np.diff(t)
    on_straight = speed[100:300].mean()
    on_loops = speed[450:700].mean()
    assert on_loops < 0.7 * on_straight
    # smooth acceleration from rest and deceleration at the end
    assert speed[:3].mean() < 0.4 * on_straight and speed[-3:].mean() < 0.4 * on_straight


def test_generated_speed_falls_with_curvature():
    ink = generate_line("loose moon", replace(PLAIN, speed_gain=1.0), np.random.default_rng(3))
    s, t = ink.strokes[0], ink.times[0]
    v = np.gradient(s, t, axis=0)
    a = np.gradient(v, t, axis=0)
    speed = np.hypot(*v.T)
    kappa = np.abs(v[:, 0] * a[:, 1] - v[:, 1] * a[:, 0]) / np.maximum(speed, 1e-9) ** 3
    inner = slice(5, -5)
    assert np.corrcoef(np.log(kappa[inner] + 1e-6), np.log(speed[inner]))[0, 1] < -0.4


def test_random_text_limits_and_odd_input():
    rng = np.random.default_rng(0)
    for _ in range(200):
        text = random_text(rng)
        assert 2 <= len(text.split()) <= 6 and len(text) <= 40
    ink = generate_line("caf\u00e9 ok", PLAIN, np.random.default_rng(0))  # a glyph the font lacks
    assert ink.num_points > 0 and ink.label == "caf\u00e9 ok"
    with pytest.raises(ValueError):
        generate_line("   ", PLAIN, np.random.default_rng(0))
