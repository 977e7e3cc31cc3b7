"""A Xournal++ notebook for the app tests (unit and browser)."""

import gzip

import numpy as np

from vrnn.synthetic import generate_line, random_text, writer_style


def notebook_bytes() -> bytes:
    """A Xournal++ notebook (gzip XML) of 2 pages x 3 lines of synthetic writing, and a
    highlighter stroke on each page (not handwriting: left out)."""
    rng = np.random.default_rng(1)
    style = writer_style(5)
    pages = []
    for page in range(2):
        strokes, y = [], 50.0
        for _ in range(3):
            ink = generate_line(random_text(rng), style, rng)
            top, left = ink.points[:, 1].min(), ink.points[:, 0].min()
            for s in ink.strokes:
                coords = " ".join(f"{v:.2f}" for v in (s + (30.0 - left, y - top)).reshape(-1))
                strokes.append(f'<stroke tool="pen" color="#000000ff" width="1.4">{coords}</stroke>')
            y += np.ptp(ink.points[:, 1]) + 1.6 * style.x_height
        strokes.append('<stroke tool="highlighter" color="#ffff0080" width="8">10 10 300 10</stroke>')
        pages.append(f'<page width="1400" height="900"><layer>{"".join(strokes)}</layer></page>')
    xml = f'<?xml version="1.0"?><xournal creator="xournalpp 1.2.2" fileversion="4">{"".join(pages)}</xournal>'
    return gzip.compress(xml.encode())
