"""Lines composed from Omniglot Latin letters of one drawer (vrnn.compose)."""

from pathlib import Path

import numpy as np
import pytest

import vrnn
from vrnn.compose import LETTERS, compose_lines, compose_word_line, latin_letter, letters_by_drawer, line_style
from vrnn.ink import Ink

PLAIN_DIGEST = "1c66f2f13c14c38b"  # sha256 of compose_lines(_fake_drawers(), 5, seed=3), as composed at fb7c680
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "omniglot"


def _box_letter(k: int, writer: str, size: float) -> Ink:
    """A fake Omniglot letter: a square outline of side ``size`` (drawn at any size), y down."""
    s = np.array([[0, 0], [size, 0], [size, size], [0, size], [0, 0]], float) + 100.0
    return Ink(strokes=[s], times=[np.linspace(0.0, 0.5, 5)], label=f"Latin/character{k:02d}", writer=writer)


def _fake_drawers():
    inks = []
    for w, size in (("omniglot-Latin-01", 50.0), ("omniglot-Latin-02", 120.0)):
        inks += [_box_letter(k, w, size * (1 + 0.3 * (k % 3))) for k in range(1, 27)]
    inks.append(Ink(strokes=[np.zeros((2, 2))], label="Greek/character01", writer="omniglot-Greek-01"))
    return inks


def test_letters_are_found_by_label():
    assert latin_letter(_box_letter(1, "w", 1.0)) == "a" and latin_letter(_box_letter(26, "w", 1.0)) == "z"
    assert latin_letter(Ink(strokes=[np.zeros((1, 2))], label="Greek/character01")) is None
    table = letters_by_drawer(_fake_drawers())
    assert set(table) == {"omniglot-Latin-01", "omniglot-Latin-02"} and set(table["omniglot-Latin-01"]) == set(LETTERS)


def test_letters_sit_on_one_baseline_at_class_heights():
    table = letters_by_drawer(_fake_drawers())
    line = compose_word_line("xlxgx", table["omniglot-Latin-02"], np.random.default_rng(0), "omniglot-Latin-02")
    x1, l, x2, g, x3 = line.strokes
    xh = np.ptp(x1[:, 1])
    bottoms = [s[:, 1].max() for s in (x1, l, x2, x3)]
    assert np.ptp(bottoms) < 0.3 * xh  # same baseline, whatever size each letter was drawn at
    assert all(0.75 * xh < np.ptp(s[:, 1]) < 1.3 * xh for s in (x2, x3))
    assert l[:, 1].min() < x1[:, 1].min() - 0.4 * xh  # an ascender rises above the x-line
    assert g[:, 1].max() > np.mean(bottoms) + 0.4 * xh  # a descender hangs below the baseline
    assert all(a[:, 0].max() < b[:, 0].min() for a, b in zip(line.strokes[:-1], line.strokes[1:]))  # left to right
    t = np.concatenate(line.times)
    assert np.all(np.diff(t) > 0) and line.label == "xlxgx" and line.writer == "omniglot-Latin-02"


def test_compose_lines_is_deterministic_and_by_one_drawer():
    inks = _fake_drawers()
    a, b = compose_lines(inks, 6, seed=3), compose_lines(inks, 6, seed=3)
    assert [i.label for i in a] == [i.label for i in b]
    assert all(np.array_equal(x, y) for i, j in zip(a, b) for x, y in zip(i.strokes, j.strokes))
    assert all(set(i.label) <= set(LETTERS + " ") for i in a)
    only = compose_lines(inks, 4, seed=0, writers=["omniglot-Latin-01"])
    assert {i.writer for i in only} == {"omniglot-Latin-01"}
    with pytest.raises(ValueError, match="no Omniglot drawer"):
        compose_lines(inks, 1, writers=["nobody"])


def _slant(line: Ink) -> float:
    """Least-squares dx/dy of the line's points about each stroke's mean (y down): > 0 leans right."""
    dx = np.concatenate([s[:, 0] - s[:, 0].mean() for s in line.strokes])
    dy = np.concatenate([s[:, 1] - s[:, 1].mean() for s in line.strokes])
    return float(-(dx * dy).sum() / (dy * dy).sum())


def test_augmented_lines_give_each_line_a_hand_of_its_own():
    inks = _fake_drawers()
    plain = compose_lines(inks, 40, seed=5)
    aug, again = compose_lines(inks, 40, seed=5, augment=True), compose_lines(inks, 40, seed=5, augment=True)
    assert all(np.array_equal(x, y) for i, j in zip(aug, again) for x, y in zip(i.strokes, j.strokes))
    # the same texts by the same drawers, only the hand differs
    assert [(i.label, i.writer) for i in aug] == [(i.label, i.writer) for i in plain]
    assert all(i.meta.get("augmented") for i in aug) and not any(i.meta.get("augmented") for i in plain)
    # plain lines keep the drawer's slant; augmented ones lean both ways from it, by varying amounts
    slants = np.array([_slant(i) - _slant(j) for i, j in zip(aug, plain)])
    assert slants.min() < -0.1 and slants.max() > 0.1 and 0.1 < slants.std() < 0.4
    # size varies line to line around the drawer's (against each line's plain twin)
    log_h = [np.log(np.ptp(i.points[:, 1]) / np.ptp(j.points[:, 1])) for i, j in zip(aug, plain)]
    assert np.std(log_h) > 0.1
    for line in aug:  # box letters (one stroke each) stay left to right, in time order
        lefts = [s[:, 0].min() for s in line.strokes]
        assert np.all(np.diff(lefts) > 0)
        t = np.concatenate(line.times)
        assert np.all(np.diff(t) > 0) and all(np.isfinite(s).all() for s in line.strokes)


def test_a_line_style_shear_leans_the_line_right():
    table = letters_by_drawer(_fake_drawers())
    letters, writer = table["omniglot-Latin-01"], "omniglot-Latin-01"
    plain = compose_word_line("xlxhx", letters, np.random.default_rng(0), writer)
    style = {**line_style(writer, np.random.default_rng(0)), "shear": 0.3, "letter_warp": 0.0, "width": 1.0}
    leaning = compose_word_line("xlxhx", letters, np.random.default_rng(0), writer, style)
    assert _slant(leaning) - _slant(plain) == pytest.approx(0.3, abs=0.02)  # tops move right (y down)
    for box in leaning.strokes:  # each box letter's top edge sits right of its bottom edge
        top, bottom = box[:-1][np.isclose(box[:-1, 1], box[:, 1].min())], box[:-1][np.isclose(box[:-1, 1], box[:, 1].max())]
        assert top[:, 0].mean() > bottom[:, 0].mean()


def test_plain_lines_are_unchanged_by_the_augmentation_code():
    """The plain composer's output, pinned: training and validation lines of earlier runs stay the same."""
    import hashlib
    lines = compose_lines(_fake_drawers(), 5, seed=3)
    h = hashlib.sha256()
    for line in lines:
        for s, t in zip(line.strokes, line.times):
            h.update(np.round(s, 6).tobytes())
            h.update(np.round(t, 6).tobytes())
    assert h.hexdigest()[:16] == PLAIN_DIGEST


@pytest.mark.skipif(not (SHARED / "strokes_background_small1.zip").exists(),
                    reason=f"Omniglot strokes not found at {SHARED} (../shared/data is not beside this checkout)")
def test_real_omniglot_drawers_compose_readable_lines():
    inks = vrnn.read_ink(SHARED / "strokes_background_small1.zip")
    table = letters_by_drawer(inks)
    assert len(table) == 20 and all(len(v) == 26 for v in table.values())
    lines = compose_lines(inks, 20, seed=0)
    for line in lines:
        n_letters = len(line.label.replace(" ", ""))
        assert len(line.strokes) >= n_letters  # printed: at least one stroke per letter
        h = np.percentile(line.points[:, 1], 95) - np.percentile(line.points[:, 1], 5)
        assert np.ptp(line.points[:, 0]) > 0.5 * h * n_letters  # letters side by side, not stacked
        assert np.all(np.diff(np.concatenate(line.times)) > 0)
