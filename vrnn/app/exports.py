"""Downloads offered by the app: ink as JSON / SVG, figures as HTML, the trace as CSV,
a model as a zip of its checkpoint folder (weights + config). No Streamlit here.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from vrnn.ink import Ink


def inks_json(inks: Sequence[Ink]) -> bytes:
    """The project's own JSON format (round-trips through ``vrnn.read_ink``)."""
    from vrnn.formats import ink_to_json_bytes

    return ink_to_json_bytes(list(inks))


def inks_svg(inks: Sequence[Ink]) -> str:
    from vrnn.formats import ink_to_svg

    return ink_to_svg(list(inks))


def figure_html(fig) -> str:
    """A standalone HTML page of a plotly figure, usable offline (plotly.js embedded)."""
    # auto_play=False: an animated figure (pen replay, linked views) waits for its own
    # Replay / Play button, at the speed chosen in the app, instead of playing at once
    return fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False,
                       config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}})


def trace_csv(trace) -> str:
    """One row per step (position, pen, KL, NLL, latent statistics); see ``vrnn.Trace.to_csv``."""
    return trace.to_csv()


def model_zip(model) -> bytes:
    """A zip of ``model.save(dir)``: ``model.safetensors`` + ``config.json``, loadable with
    ``vrnn.load_model`` once unpacked."""
    with tempfile.TemporaryDirectory(prefix="vrnn-export-") as tmp:
        folder = Path(tmp) / "model"
        model.save(folder)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    zf.write(f, arcname=f"model/{f.name}")
        return buf.getvalue()


def safe_stem(name: str | None, default: str = "ink") -> str:
    """A file-name-safe stem from a label or file name."""
    if not name:
        return default
    stem = Path(str(name)).stem if "." in str(name) else str(name)
    ascii_only = stem.encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in ascii_only).split()
    return "-".join(words)[:40].strip("-") or default
