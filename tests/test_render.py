"""PNG rendering of inks: sizes, colours, captions and odd inputs."""

import numpy as np
import pytest
from PIL import Image

from vrnn.ink import Ink
from vrnn.render import PALETTE, render_ink_png, render_inks_png


def _zigzag(offset=0.0, n=20):
    """A wide, flat ink (1000 x 40 units), like a line of handwriting."""
    x = np.linspace(0, 1000, n) + offset
    y = np.where(np.arange(n) % 2, 0.0, 30.0)
    return Ink(strokes=[np.column_stack([x, y]), np.array([[500.0 + offset, -10.0]])], label="zig", writer="w1")


def _pixels(img):
    return np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)


def _has_colour(img, hex_colour, tol=40):
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(_pixels(img) - target).max(axis=1) < tol).any())


def test_grid_size_and_ink_drawn(tmp_path):
    path = tmp_path / "grid.png"
    img = render_inks_png([_zigzag(i) for i in range(5)], path, width=600, cols=2, cell_height=100)
    assert img.size == (600, 300)  # 5 cells in 2 columns -> 3 rows
    dark = (_pixels(img).max(axis=1) < 80).sum()
    assert dark > 500  # strokes, not just captions and grid lines
    with Image.open(path) as reread:
        assert reread.format == "PNG" and reread.size == (600, 300)


def test_each_cell_is_scaled_to_fit():
    tiny = _zigzag().transformed(scale=0.01)
    huge = _zigzag().transformed(scale=100.0, shift=(1e5, -3e4))
    a = np.asarray(render_inks_png([tiny], width=400, cols=1, cell_height=120, labels=False))
    b = np.asarray(render_inks_png([huge], width=400, cols=1, cell_height=120, labels=False))
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0  # same picture whatever the units
    ink_cols = np.flatnonzero((a.min(axis=2) < 128).any(axis=0))
    assert ink_cols.min() < 40 and ink_cols.max() > 360  # fills the cell's width


def test_segments_share_a_cell_with_their_colours():
    prefix = _zigzag()
    continuation = Ink(strokes=[np.array([[1000.0, 30.0], [1300.0, 0.0], [1600.0, 30.0]])])
    cell = [(prefix, "black"), (continuation, "tab:red")]
    img = render_inks_png([cell], width=500, cols=1, cell_height=150, line_width=3)
    assert _has_colour(img, PALETTE[3])  # tab:red
    assert (_pixels(img).max(axis=1) < 60).sum() > 100  # the black prefix


def test_per_stroke_and_per_cell_colours():
    img = render_inks_png(
        [_zigzag(), _zigzag()], width=600, cols=2, cell_height=150, line_width=3,
        colors=[["#1f77b4", "#2ca02c"], (148, 103, 189)], labels=False,
    )
    assert _has_colour(img, "#1f77b4") and _has_colour(img, "#9467bd")
    with pytest.raises(ValueError):
        render_inks_png([_zigzag()], colors=["red", "blue"])


def test_captions():
    ink = _zigzag()
    with_caption = np.asarray(render_inks_png([ink], width=400, cols=1, cell_height=160, labels=True))
    without = np.asarray(render_inks_png([ink], width=400, cols=1, cell_height=160, labels=False))
    custom = np.asarray(render_inks_png([ink], width=400, cols=1, cell_height=160, labels=["a much longer caption"]))
    top = slice(0, 22)
    assert (with_caption[top] < 200).any() and not (without[top] < 200).any()
    assert (custom[top] < 200).sum() > (with_caption[top] < 200).sum()
    with pytest.raises(ValueError):
        render_inks_png([ink, ink], labels=["only one"])


def test_single_ink_and_degenerate_inputs(tmp_path):
    img = render_ink_png(_zigzag(), tmp_path / "one.png", width=320, height=90, color="tab:blue")
    assert img.size == (320, 90) and _has_colour(img, PALETTE[0])
    dot = Ink(strokes=[np.array([[5.0, 5.0]])])
    empty = Ink(strokes=[])
    img = render_inks_png([dot, empty], width=300, cols=2, cell_height=100, labels=False, line_width=4)
    assert (_pixels(img).max(axis=1) < 100).any()  # the single point is drawn as a dot
    with pytest.raises(TypeError):
        render_inks_png([[_zigzag()]])  # a list cell must hold (ink, colour) pairs
