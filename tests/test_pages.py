"""Cutting a page of handwriting into lines (vrnn.pages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vrnn
from vrnn import Ink
from vrnn.pages import body_height, line_groups, split_lines, split_pages

DATA = Path(__file__).parent / "data" / "formats"
BODY = 20.0  # body height of the built pages, in their units


def _lines(seed: int, n: int) -> list[Ink]:
    """``n`` synthetic lines of at least two words (a lone letter has no stable body height)."""
    lines = [ink for ink in vrnn.synthetic_inks(4 * n, seed=seed) if ink.label and " " in ink.label]
    assert len(lines) >= n
    return lines[:n]


def build_page(lines: list[Ink], spacing: float, *, marks: str = "as written") -> tuple[Ink, list[int]]:
    """Lines scaled to one body height and stacked ``spacing`` body heights apart (baseline to
    baseline), as one ink in writing order; also the true line of every stroke.

    ``marks="line end"`` moves each line's small strokes (i-dots, t-bars, accents) after all of
    its other strokes, as people who dot their i's at the end of a line do; ``"page end"`` moves
    them all after the last line."""
    strokes, times, truth, late = [], [], [], []
    clock = 0.0
    for k, line in enumerate(lines):
        scale = BODY / body_height(line.strokes)
        x0 = line.bounds()[0]
        placed = [(s - [x0, 0.0]) * scale + [30.0, k * spacing * BODY] for s in line.strokes]
        order = list(range(len(placed)))
        small = [np.ptp(s[:, 1]) < 0.5 * BODY and np.ptp(s[:, 0]) < 2 * BODY for s in placed]
        if marks == "line end":
            order.sort(key=lambda i: small[i])
        elif marks == "page end":
            late += [(placed[i], k) for i in order if small[i]]
            order = [i for i in order if not small[i]]
        for i in order:
            strokes.append(placed[i])
            times.append(clock + line.times[i] - line.times[0][0])
            truth.append(k)
        clock = times[-1][-1] + 1.0
    for stroke, k in late:
        strokes.append(stroke)
        times.append(clock + 0.1 * np.arange(len(stroke)))
        truth.append(k)
        clock = times[-1][-1] + 0.3
    return Ink(strokes=strokes, times=times, writer="page-writer", meta={"page": 2}), truth


def assert_whole_lines_in_order(page: Ink, truth: list[int], n: int) -> list[Ink]:
    lines = split_lines(page)
    got = [[truth[_index_of(page, s)] for s in line.strokes] for line in lines]
    assert [sorted(set(g)) for g in got] == [[k] for k in range(n)]
    for k, line in enumerate(lines):
        assert len(line.strokes) == truth.count(k)  # whole: every stroke of line k, none of another
        indices = [_index_of(page, s) for s in line.strokes]
        assert indices == sorted(indices)  # writing order kept
    return lines


def _index_of(page: Ink, stroke: np.ndarray) -> int:
    return next(i for i, s in enumerate(page.strokes) if s.shape == stroke.shape and np.array_equal(s, stroke))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("spacing", [4.0, 5.0, 6.5])
def test_a_synthetic_page_comes_back_as_whole_lines_in_order(seed, spacing):
    page, truth = build_page(_lines(seed, 8), spacing)
    lines = assert_whole_lines_in_order(page, truth, 8)
    assert [line.meta["caption"] for line in lines[:2]] == ["page 2, line 1", "page 2, line 2"]
    assert all(line.meta["page"] == 2 and line.writer == "page-writer" for line in lines)
    assert all(line.label is None for line in lines)
    for line in lines:  # times travel with their strokes
        for stroke, t in zip(line.strokes, line.times, strict=True):
            assert len(stroke) == len(t)
        assert (np.diff(np.concatenate(line.times)) > 0).all()


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("marks", ["line end", "page end"])
def test_i_dots_and_t_bars_written_late_stay_with_their_line(seed, marks):
    page, truth = build_page(_lines(seed, 6), 5.0, marks=marks)
    if marks == "page end":
        assert truth != sorted(truth)  # some line's marks really come after later lines
    assert_whole_lines_in_order(page, truth, 6)


def _word(x: float, baseline: float, width: float = 60.0) -> np.ndarray:
    """A cursive-looking body stroke: a wave between the baseline and the x-height (BODY)."""
    t = np.linspace(0, 1, 40)
    return np.column_stack([x + width * t, baseline - BODY / 2 - BODY / 2 * np.sin(t * 6 * np.pi)])


def test_descenders_and_late_dots_of_a_tight_page_stay_with_their_line():
    """Three printed-style lines 3.8 body heights apart: stems of p/g/y dip 1.6 B below the
    baseline (deep into the gap), the dots of the i's come after each line's last word, and
    a tall capital opens each line."""
    strokes, truth = [], []
    for k in range(3):
        base = 100.0 + k * 3.8 * BODY
        capital = np.column_stack([np.full(20, 30.0), np.linspace(base, base - 2.2 * BODY, 20)])
        strokes.append(capital), truth.append(k)
        for j in range(5):
            x = 50 + 80 * j
            strokes.append(_word(x, base)), truth.append(k)
            stem = np.column_stack([np.full(15, x + 55.0), np.linspace(base - BODY, base + 1.6 * BODY, 15)])
            strokes.append(stem), truth.append(k)  # a descender, written after its letter's body
        for j in range(5):
            strokes.append(np.array([[50 + 80 * j + 20.0, base - 1.6 * BODY]])), truth.append(k)  # i-dots
        strokes.append(np.array([[450.0, base - 0.9 * BODY], [470.0, base - 0.9 * BODY]])), truth.append(k)  # t-bar
    page = Ink(strokes=strokes)
    assert_whole_lines_in_order(page, truth, 3)


def test_lines_come_back_top_to_bottom_whatever_order_they_were_written_in():
    lines = _lines(5, 3)
    page, truth = build_page(lines, 5.0)
    # write line 3 first, then line 1, then line 2
    order = [i for k in (2, 0, 1) for i, t in enumerate(truth) if t == k]
    shuffled = Ink(strokes=[page.strokes[i] for i in order])
    got = line_groups(shuffled.strokes)
    assert [sorted({truth[order[i]] for i in g}) for g in got] == [[0], [1], [2]]
    assert all(g == sorted(g) for g in got)


def test_splitting_does_not_depend_on_units_or_position():
    page, truth = build_page(_lines(6, 5), 4.5)
    groups = line_groups(page.strokes)
    assert line_groups([s * 1000.0 - 7e5 for s in page.strokes]) == groups
    assert line_groups([s * 0.001 for s in page.strokes]) == groups


def test_single_lines_empty_inks_pressure_and_meta():
    (line,) = _lines(7, 1)
    line = Ink(strokes=line.strokes, label=line.label, writer="w", pressure=[np.full(len(s), 0.5) for s in line.strokes])
    (only,) = split_lines(line)
    assert only.label == line.label and only.meta == {"line": 1, "caption": "line 1"}
    assert [p.tolist() for p in only.pressure] == [p.tolist() for p in line.pressure]
    assert split_lines(Ink(strokes=[])) == []
    (dot,) = split_lines(Ink(strokes=[np.array([[1.0, 1.0]]), np.array([[2.0, 1.0]])]))
    assert len(dot.strokes) == 2
    assert split_lines(line, page=4)[0].meta["caption"] == "page 4, line 1"


def test_split_pages_of_a_xournal_notebook_names_page_and_line():
    lines = split_pages(vrnn.read_ink(DATA / "notebook.xopp"))
    assert [line.meta["caption"] for line in lines] == ["page 1, line 1", "page 3, line 1"]
    assert lines[0].meta["source"] == "xournal" and lines[0].pressure is not None


coordinates = st.floats(-1e9, 1e9) | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, 1e-300])


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(st.lists(st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=6), max_size=12))
def test_any_strokes_are_split_into_a_partition_in_writing_order(raw):
    strokes = [np.array(s, dtype=np.float64) for s in raw]
    groups = line_groups(strokes)
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(strokes)))  # every stroke exactly once
    assert all(g == sorted(g) and g for g in groups)
    lines = split_lines(Ink(strokes=strokes))
    assert sum(len(line.strokes) for line in lines) == len(strokes)
