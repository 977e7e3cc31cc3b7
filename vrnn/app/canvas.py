"""The pen canvas: a Streamlit custom component (components v2, inline HTML / CSS / JS).

The browser side (``canvas.js``, ``canvas.css`` beside this file, passed inline: no
build step, no iframe) records pointer events from mouse, pen and touch and returns,
on every pen-up, undo and clear, the state value ``ink``::

    {"strokes": [[[x, y, t, pressure], ...], ...], "size": [width, height], "rev": n}

with ``x, y`` in CSS pixels (y down), ``t`` in seconds since the drawing's first
pen-down. :func:`payload_to_ink` turns that into an :class:`~vrnn.Ink`; it is pure and
tested without a browser. :func:`pen_canvas` mounts the component (Streamlit only).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vrnn.ink import Ink

_HERE = Path(__file__).resolve().parent
COMPONENT_NAME = "vrnn_pen_canvas"
MAX_POINTS = 20_000  # a drawing larger than this is truncated: far beyond a page of handwriting

HTML = """
<div class="ink-root">
  <div class="ink-surface">
    <canvas aria-label="Drawing canvas: write here with a mouse, pen or finger"></canvas>
    <div class="ink-hint">Write a word here: mouse, pen or finger</div>
  </div>
  <div class="ink-toolbar">
    <button type="button" data-action="undo" title="Remove the last stroke">↶ Undo</button>
    <button type="button" data-action="clear" title="Remove every stroke">✕ Clear</button>
    <span class="ink-count"></span>
  </div>
</div>
"""


def payload_to_ink(payload: Any) -> Ink | None:
    """The canvas state value as an :class:`~vrnn.Ink` (``None`` when empty or malformed).

    Points keep their order; times and pressures come along (``ink.pressure``,
    ``PointerEvent.pressure``: 1 is full pressure). Non-finite or malformed points are dropped, so
    whatever the browser sends never raises here.
    """
    if not isinstance(payload, dict):
        return None
    raw = payload.get("strokes")
    if not isinstance(raw, list):
        return None
    strokes, times, pressures = [], [], []
    budget = MAX_POINTS
    for stroke in raw:
        if not isinstance(stroke, list) or budget <= 0:
            continue
        rows = [p for p in stroke[:budget] if isinstance(p, (list, tuple)) and len(p) >= 2]
        if not rows:
            continue
        arr = np.full((len(rows), 4), np.nan)
        for i, p in enumerate(rows):
            vals = list(p[:4]) + [None] * (4 - len(p[:4]))
            arr[i] = [_num(v) for v in vals]
        arr = arr[np.isfinite(arr[:, :2]).all(axis=1)]
        if len(arr) == 0:
            continue
        budget -= len(arr)
        strokes.append(arr[:, :2])
        t = arr[:, 2]
        times.append(t if np.isfinite(t).all() else None)
        pressures.append(np.nan_to_num(arr[:, 3], nan=0.5))
    if not strokes:
        return None
    if any(t is None for t in times):
        times_out = None
    else:
        times_out = [np.maximum.accumulate(t) for t in times]  # clocks never run backwards
    ink = Ink(strokes=strokes, times=times_out, pressure=pressures, label=None, writer="canvas")
    size = payload.get("size")
    if isinstance(size, (list, tuple)) and len(size) == 2:
        ink.meta["canvas_size"] = (_num(size[0]), _num(size[1]))
    return ink


def ink_to_payload_strokes(ink: Ink | None) -> list[list[list[float]]]:
    """An ink as the canvas's stroke lists (to restore a drawing when the canvas remounts)."""
    if ink is None:
        return []
    out = []
    pressures = ink.pressure
    for k, s in enumerate(ink.strokes):
        t = ink.times[k] if ink.times is not None else np.zeros(len(s))
        p = pressures[k] if pressures is not None and k < len(pressures) else np.full(len(s), 0.5)
        out.append(np.column_stack([s, t, p]).round(4).tolist())
    return out


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str]:
    return (_HERE / "canvas.js").read_text(encoding="utf-8"), (_HERE / "canvas.css").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _component():
    import streamlit as st

    js, css = _assets()
    return st.components.v2.component(COMPONENT_NAME, html=HTML, js=js, css=css)


def pen_canvas(key: str, *, height: int = 260, line_width: float = 2.6, restore: Ink | None = None,
               on_change=None) -> Ink | None:
    """Mount the pen canvas and return the drawn :class:`~vrnn.Ink` (``None`` while empty).

    ``restore``: the ink to show when the component mounts afresh (e.g. after
    switching input sources and back); ignored while the canvas stays mounted.
    """
    import streamlit as st

    mount = _component()
    # The drawing lives in the browser while the canvas stays mounted (canvas.js ignores
    # the strokes then); a mount afresh gets them back: ``restore`` before anything was
    # drawn under this key, else the last drawing it sent (the page's layout changed, so
    # Streamlit built the canvas anew).
    state = st.session_state.get(key)
    sent = state.get("ink") if hasattr(state, "get") else None
    strokes = sent.get("strokes") if isinstance(sent, dict) else None
    data = {"height": int(height), "line_width": float(line_width),
            "strokes": strokes if strokes is not None else ink_to_payload_strokes(restore)}
    result = mount(key=key, data=data, on_ink_change=on_change or (lambda: None))
    payload = result.get("ink") if result is not None else None
    if payload is None:
        return restore  # nothing drawn since the mount: the canvas shows ``restore``
    return payload_to_ink(payload)
