"""Training sources beyond single files: notebook pages cut into lines, and lines composed
from Omniglot letters (vrnn.datasets)."""

import gzip

import numpy as np
import pytest

import vrnn
from vrnn.datasets import DataError, load_eval_inks, load_mixture, read_inks
from vrnn.ink import Ink
from vrnn.synthetic import generate_line, random_text, writer_style


def _xopp_page(lines: list[Ink], gap: float) -> bytes:
    """A Xournal++ document of one page holding ``lines`` stacked ``gap`` apart, y down."""
    strokes, y = [], 60.0
    for ink in lines:
        top = ink.points[:, 1].min()
        for s in ink.strokes:
            p = s + (40.0 - ink.points[:, 0].min(), y - top)
            coords = " ".join(f"{v:.2f}" for v in p.reshape(-1))
            strokes.append(f'<stroke tool="pen" color="#000000ff" width="1.41">{coords}</stroke>')
        y += np.ptp(ink.points[:, 1]) + gap
    body = "".join(strokes)
    xml = (f'<?xml version="1.0" standalone="no"?><xournal creator="xournalpp 1.2.2" fileversion="4">'
           f'<page width="1200" height="{y + 60:.0f}"><background type="solid" color="#ffffffff" style="lined"/>'
           f'<layer>{body}</layer></page></xournal>')
    return gzip.compress(xml.encode())


def test_a_notebook_page_trains_as_its_lines(tmp_path):
    rng = np.random.default_rng(0)
    style = writer_style(3)
    lines = [generate_line(random_text(rng), style, rng) for _ in range(4)]
    path = tmp_path / "notes.xopp"
    path.write_bytes(_xopp_page(lines, gap=1.5 * style.x_height))
    assert len(vrnn.read_ink(path)) == 1  # the reader gives the page
    inks = read_inks(path)  # training reads its lines, top to bottom
    assert len(inks) == 4
    assert [ink.meta["caption"] for ink in inks] == [f"page 1, line {i}" for i in range(1, 5)]
    assert [len(ink.strokes) for ink in inks] == [len(line.strokes) for line in lines]


def _fake_letters(path, drawers: int):
    inks = []
    for d in range(1, drawers + 1):
        for k in range(1, 27):
            size = 40.0 + 10 * (k % 4) + d
            s = np.array([[0, 0], [size, 0], [size, size], [0, size]], float)
            inks.append(Ink(strokes=[s], times=[np.linspace(0, 0.4, 4)], label=f"Latin/character{k:02d}",
                            writer=f"omniglot-Latin-{d:02d}"))
    vrnn.write_ink(inks, path)


def test_omniglot_lines_source_holds_out_drawers(tmp_path):
    path = tmp_path / "letters.json"
    _fake_letters(path, drawers=12)
    spec = f"omniglot-lines:{path}"
    mix = load_mixture(["synthetic:0.7", f"{spec}:0.3"], synthetic_lines=40, valid_fraction=0.2, test_fraction=0.2)
    composed_train = [i for i, k in zip(mix.train, mix.train_source) if k == 1]
    assert len(composed_train) == 40 and mix.weights == pytest.approx([0.7, 0.3])
    train_w = {i.writer for i in composed_train}
    valid_w = {i.writer for i in mix.valid if i.writer.startswith("omniglot")}
    test = load_eval_inks(spec, synthetic_lines=40, valid_fraction=0.2, test_fraction=0.2)
    test_w = {i.writer for i in test}
    assert train_w and valid_w and test_w
    assert not (train_w & valid_w or train_w & test_w or valid_w & test_w)
    assert all(set(i.label) <= set("abcdefghijklmnopqrstuvwxyz ") for i in composed_train)
    assert mix.card()[1]["source"] == spec


def test_augmented_omniglot_lines_augment_training_lines_only(tmp_path):
    path = tmp_path / "letters.json"
    _fake_letters(path, drawers=12)
    kw = dict(synthetic_lines=30, valid_fraction=0.2, test_fraction=0.2)
    plain = load_mixture([f"omniglot-lines:{path}"], **kw)
    aug = load_mixture([f"omniglot-lines-augmented:{path}"], **kw)
    assert all(i.meta.get("augmented") for i in aug.train) and not any(i.meta.get("augmented") for i in aug.valid)
    assert {i.writer for i in aug.train} == {i.writer for i in plain.train}
    # the same texts by the same drawers as the plain lines, in other hands
    assert [(i.label, i.writer) for i in aug.train] == [(i.label, i.writer) for i in plain.train]
    assert all(not np.allclose(a.points, b.points) for a, b in zip(aug.train, plain.train))
    # validation (and test) are the plain source's own held-out lines, so the numbers compare
    assert [i.label for i in aug.valid] == [i.label for i in plain.valid]
    assert all(np.array_equal(a, b) for x, y in zip(aug.valid, plain.valid) for a, b in zip(x.strokes, y.strokes))
    test_plain = load_eval_inks(f"omniglot-lines:{path}", **kw)
    test_aug = load_eval_inks(f"omniglot-lines-augmented:{path}", **kw)
    assert [i.label for i in test_aug] == [i.label for i in test_plain] and not any(i.meta.get("augmented") for i in test_aug)
    assert all(np.array_equal(a.points, b.points) for a, b in zip(test_aug, test_plain))
    assert aug.card()[0]["source"] == f"omniglot-lines-augmented:{path}"
    with pytest.raises(DataError, match="^omniglot-lines-augmented:.*Latin letters"):
        other = tmp_path / "other.json"
        vrnn.write_ink([Ink(strokes=[np.zeros((2, 2))], writer="a"), Ink(strokes=[np.ones((2, 2))], writer="b")], other)
        load_mixture([f"omniglot-lines-augmented:{other}"], synthetic_lines=10)


def test_omniglot_lines_needs_latin_letters(tmp_path):
    path = tmp_path / "other.json"
    vrnn.write_ink([Ink(strokes=[np.zeros((2, 2))], writer="a"), Ink(strokes=[np.ones((2, 2))], writer="b")], path)
    with pytest.raises(DataError, match="Latin letters"):
        load_mixture([f"omniglot-lines:{path}"], synthetic_lines=10)


def test_draw_seed_draws_fresh_training_lines_and_keeps_the_held_out_ones(tmp_path):
    path = tmp_path / "letters.json"
    _fake_letters(path, drawers=12)
    specs = ["synthetic:0.5", f"omniglot-lines-augmented:{path}:0.5"]
    kw = dict(synthetic_lines=30, valid_fraction=0.2, test_fraction=0.2)
    base = load_mixture(specs, **kw)
    assert _same_inks(load_mixture(specs, draw_seed=0, **kw).train, base.train)  # default: the data seed
    fresh = load_mixture(specs, draw_seed=1, **kw)
    # validation (held-out writers, their lines) is the data seed's, to the bit
    assert _same_inks(fresh.valid, base.valid) and fresh.valid_source == base.valid_source
    assert [(c["train_inks"], c["valid_inks"]) for c in fresh.counts] == [(c["train_inks"], c["valid_inks"])
                                                                          for c in base.counts]
    for k in (0, 1):  # each source: other lines, by the same training writers only
        new = [i for i, s in zip(fresh.train, fresh.train_source) if s == k]
        old = [i for i, s in zip(base.train, base.train_source) if s == k]
        assert len(new) == len(old) == 30
        assert sum(np.array_equal(a.points, b.points) for a, b in zip(new, old)) == 0
        assert {i.writer for i in new} <= _training_writers(k, path, kw)
        assert not {i.writer for i in new} & {i.writer for i in base.valid}
    # a different data seed moves the held-out drawers; a draw seed never does
    assert {i.writer for i in load_mixture(specs, draw_seed=5, **kw).valid} == {i.writer for i in base.valid}


def _same_inks(a: list[Ink], b: list[Ink]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x.points, y.points) for x, y in zip(a, b))


def _training_writers(source: int, path, kw) -> set[str]:
    if source == 0:
        from vrnn.synthetic import writers_in_split
        return {f"syn-{w:04d}" for w in writers_in_split("train")}
    drawers = {i.writer for i in read_inks(path)}
    held = {i.writer for i in load_mixture([f"omniglot-lines:{path}"], **kw).valid}
    held |= {i.writer for i in load_eval_inks(f"omniglot-lines:{path}", **kw)}
    return drawers - held
