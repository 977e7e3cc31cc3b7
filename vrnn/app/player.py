"""The time player of the linked views: a Streamlit custom component (components v2,
inline HTML / CSS / JS beside this file, no build step, no iframe).

:func:`vrnn.app.trace_views.trace_views` gives a plotly chart without cursors and a
*player spec*: for every cursor, its axes, its look and its position at every step (in
data units). ``player.js`` draws those cursors in an SVG overlay on the chart and runs
Play / Pause / the slider in the browser, so playback never waits for the server.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent
COMPONENT_NAME = "vrnn_time_player"

HTML = """
<div class="player-root">
  <button type="button" data-action="play" aria-pressed="false" title="Play / pause the time cursor">▶ Play</button>
  <input type="range" min="0" max="1" step="1" value="0" aria-label="Time step: one cursor for every view below">
  <label class="player-speed">speed
    <select aria-label="Playback speed">
      <option value="0.5">0.5×</option><option value="1" selected>1×</option><option value="2">2×</option>
      <option value="4">4×</option>
    </select>
  </label>
  <span class="player-readout">step 0</span>
</div>
"""

CSS = """
.player-root { display: flex; align-items: center; gap: 0.8rem; flex-wrap: wrap;
  font-family: var(--st-font, system-ui, sans-serif); color: var(--st-text-color, #1f2937); }
.player-root button { font: inherit; padding: 0.35rem 0.9rem; min-width: 6.5rem; border-radius: 0.5rem;
  border: 1px solid #1d4ed8; background: #1d4ed8; color: white; cursor: pointer; }
.player-root button[aria-pressed=true] { background: white; color: #1d4ed8; }
.player-root input[type=range] { flex: 1 1 18rem; accent-color: #1d4ed8; }
.player-root select { font: inherit; }
.player-readout { color: #1d4ed8; font-variant-numeric: tabular-nums; min-width: 22rem; }
"""


@lru_cache(maxsize=1)
def _component():
    import streamlit as st

    js = (_HERE / "player.js").read_text(encoding="utf-8")
    return st.components.v2.component(COMPONENT_NAME, html=HTML, js=js, css=CSS)


def time_player(key: str, spec: dict) -> None:
    """Mount the player for the chart named in ``spec["chart"]`` (a CSS selector)."""
    _component()(key=key, data=spec)
