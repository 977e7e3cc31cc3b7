"""The models the page can use: the bundled ones, loaded once per process and shared
read-only by every session (``st.cache_resource``), then the session's retrained ones.

The lowest layer of the Streamlit page: :mod:`vrnn.app.panels` and :mod:`vrnn.app.ui`
import it, it imports neither.
"""

from __future__ import annotations

import os

import numpy as np
import streamlit as st

from vrnn.ink import Ink
from vrnn.text import one_line

from .compute import ContinuationSettings, ModelService
from .state import SessionData

BUNDLED = {"vrnn": "VRNN (bundled)", "rnn": "RNN-GMM baseline (bundled)"}


@st.cache_resource(show_spinner=False)
def _torch_setup() -> int:
    """One intra-op thread per inference: sessions run side by side on few cores."""
    import torch

    threads = int(os.environ.get("VRNN_APP_TORCH_THREADS", "1"))
    torch.set_num_threads(max(1, threads))
    return threads


def model_path(kind: str) -> str:
    """Where the ``kind`` model (``"vrnn"`` or ``"rnn"``) loads from: the bundled folder, or
    ``VRNN_APP_VRNN_MODEL`` / ``VRNN_APP_RNN_MODEL`` when set."""
    from vrnn.checkpoint import bundled_path

    return os.environ.get(f"VRNN_APP_{kind.upper()}_MODEL") or str(bundled_path(kind))


@st.cache_resource(show_spinner="Loading the model…")
def bundled_service(kind: str, path: str) -> ModelService:
    """A model loaded once per process and shared read-only by all sessions."""
    import vrnn

    _torch_setup()
    model = vrnn.load_model(path, device=os.environ.get("VRNN_APP_DEVICE") or None)
    service = ModelService(model, BUNDLED[kind])
    warm_up(service)
    return service


def warm_up(service: ModelService) -> None:
    """One tiny trace and continuation, so the first pen-up does not pay torch's first-call costs."""
    ink = Ink(strokes=[np.array([[0.0, 0.0], [4.0, 6.0], [8.0, 0.0], [12.0, 6.0]])])
    service.trace(ink)
    service.continuations(ink, ContinuationSettings(n=1, steps=2))


def try_bundled(kind: str) -> tuple[ModelService | None, str | None]:
    """The bundled ``kind`` model's service, or ``None`` and a one-line reason."""
    try:
        return bundled_service(kind, model_path(kind)), None
    except Exception as e:  # noqa: BLE001 - CheckpointError or a broken install: one line on the page
        return None, one_line(str(e)) or type(e).__name__


def session_data() -> SessionData:
    if "vrnn_app" not in st.session_state:
        st.session_state["vrnn_app"] = SessionData()
    return st.session_state["vrnn_app"]


def available_models(data: SessionData) -> dict[str, ModelService]:
    """Every model the session can pick: bundled ones that load, then its retrained ones."""
    out: dict[str, ModelService] = {}
    for kind in BUNDLED:
        service, _ = try_bundled(kind)
        if service is not None:
            out[service.name] = service
    out.update(data.models)
    return out


#: The session-state key that asks the next run to select a model in the sidebar (a widget's
#: own key cannot be set once the widget is on the page, e.g. from inside a fragment).
SELECT_NEXT = "select_model_next"


def select_model_next_run(name: str) -> None:
    st.session_state[SELECT_NEXT] = name
