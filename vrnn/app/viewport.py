"""How wide the page's main column is: an invisible Streamlit custom component (v2).

``viewport.js`` (beside this file, passed inline) measures the column it is mounted in
and sends the width in CSS pixels on mount and after a resize that changes it by more
than 8%. :func:`main_width` mounts it and returns that width, or :data:`DEFAULT_WIDTH`
before the browser has answered (the first run, AppTest).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent
COMPONENT_NAME = "vrnn_viewport"
DEFAULT_WIDTH = 1000  # the main column of a 1400 px window with the sidebar open
HTML = '<div class="vp-root" aria-hidden="true"></div>'
CSS = ".vp-root { height: 0; overflow: hidden; }"
#: Below this main-column width (CSS px) the page stacks: the input above the continuations,
#: and the linked views one panel per row, full width (two columns of ~300 px cannot hold
#: their titles and captions; a 1024 px projector with the sidebar open leaves ~600 px).
STACK_BELOW_PX = 820


def clamp_width(value) -> int:
    """A reported width as an int in 320..2400 px (anything else: :data:`DEFAULT_WIDTH`)."""
    try:
        w = float(value)
    except (TypeError, ValueError):
        return DEFAULT_WIDTH
    if w != w or w <= 0:  # NaN or nothing measured
        return DEFAULT_WIDTH
    return int(min(max(w, 320.0), 2400.0))


@lru_cache(maxsize=1)
def _component():
    import streamlit as st

    return st.components.v2.component(COMPONENT_NAME, html=HTML, js=(_HERE / "viewport.js").read_text("utf-8"),
                                      css=CSS)


def main_width(key: str = "viewport") -> int:
    """The main column's width in CSS px, as the browser last reported it."""
    result = _component()(key=key, on_width_change=lambda: None)
    return clamp_width(result.get("width") if result is not None else None)
