"""The Streamlit page: sidebar, input (canvas / upload / examples), continuations and tabs.

``app.py`` calls :func:`main`. Heavy work goes through :class:`~vrnn.app.compute.ModelService`
(cached per ink and settings); figures come from :mod:`vrnn.app.figures`; the tabs are
in :mod:`vrnn.app.panels`. Models load once per process (``st.cache_resource``) and are
shared read-only by every session.
"""

from __future__ import annotations

import os
import sys
import time

import streamlit as st

from vrnn.ink import Ink
from vrnn.text import one_line

from . import figures, panels
from .canvas import pen_canvas
from .compute import ContinuationSettings, ModelService
from .examples import builtin_examples
from .state import SessionData, ink_choice_label, parse_upload

BUNDLED = {"vrnn": "VRNN (bundled)", "rnn": "RNN-GMM baseline (bundled)"}
INPUT_SOURCES = (":material/draw: Draw", ":material/upload_file: Upload", ":material/menu_book: Examples")
UPLOAD_TYPES = None  # formats are detected from name and content; a wrong file gets a one-line error
MAX_SELECT_OPTIONS = 1000

PRESENTATION_CSS = """
<style>
  html, body, [data-testid="stAppViewContainer"] { font-size: 19px; }
  [data-testid="stMetricValue"] { font-size: 1.9rem; }
  h1 { font-size: 3rem !important; }
</style>
"""
BASE_CSS = """
<style>
  [data-testid="stMetricValue"] { font-size: 1.55rem; }
  .block-container { padding-top: 2.2rem; }
</style>
"""


# ----------------------------------------------------------------- shared resources
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
    from vrnn.checkpoint import load_model

    _torch_setup()
    model = load_model(path, device=os.environ.get("VRNN_APP_DEVICE") or None)
    warm_up(model)
    return ModelService(model, BUNDLED[kind])


def warm_up(model) -> None:
    """One tiny trace and continuation, so the first pen-up does not pay torch's first-call costs."""
    import numpy as np

    ink = Ink(strokes=[np.array([[0.0, 0.0], [4.0, 6.0], [8.0, 0.0], [12.0, 6.0]])])
    model.trace(ink)
    model.continue_ink(ink, n=1, steps=2)


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


# ----------------------------------------------------------------- sidebar
def sidebar(data: SessionData):
    """Model choice, continuation controls, display; returns (service, settings, style, trace_seed)."""
    sb = st.sidebar
    sb.markdown("### Model")
    models = available_models(data)
    if not models:
        _, error = try_bundled("vrnn")
        sb.error(error or "No model available.")
        return None, None, figures.DEFAULT_STYLE, 0
    names = list(models)
    if st.session_state.get("model_name") not in names:
        st.session_state["model_name"] = names[0]
    name = sb.selectbox("Model", names, key="model_name", label_visibility="collapsed")
    service = models[name]
    sb.caption(model_summary(service))

    sb.markdown("### Continuations")
    n = sb.slider("How many", 1, 12, 4, key="cont_n")
    steps = sb.slider("Length (steps)", 20, 600, 200, step=10, key="cont_steps")
    temperature = sb.slider("Temperature", 0.1, 2.0, 0.8, step=0.05, key="cont_temp",
                            help="Divides the mixture and pen logits by T and multiplies every sigma (pen offsets "
                                 "and the prior over z) by √T: below 1 tidier, above 1 wilder.")
    seed = sb.number_input("Seed", 0, 1_000_000, 0, step=1, key="seed",
                           help="Same seed, same continuations. “More” moves to the next seed.")
    z_mode = sb.radio("Latent z after the prefix", ["sample", "mean"], key="z_mode", horizontal=True,
                      format_func=lambda m: {"sample": "prior sample", "mean": "prior mean"}[m],
                      disabled=not service.is_latent)
    sb.radio("Layout", ["overlay", "grid"], key="cont_layout", horizontal=True,
             format_func=lambda m: {"overlay": "overlaid", "grid": "side by side"}[m])

    sb.markdown("### Display")
    presentation = sb.toggle("Presentation mode", key="presentation",
                             help="Bigger fonts, lines and markers for talks and projectors.")
    with sb.expander("Advanced"):
        trace_seed = st.number_input("Trace seed (posterior sample of z)", 0, 1_000_000, 0, key="trace_seed")
    settings = ContinuationSettings(n=int(n), steps=int(steps), temperature=float(temperature), seed=int(seed),
                                    z_mode=z_mode if service.is_latent else "sample")
    style = figures.Style.presentation() if presentation else figures.DEFAULT_STYLE
    return service, settings, style, int(trace_seed)


def model_summary(service: ModelService) -> str:
    cfg = service.model.config
    card = getattr(service.model, "card", {}) or {}
    kind = "VRNN-GMM" if service.is_latent else "RNN-GMM (no latents)"
    bits = [f"{kind}: {cfg.rnn.upper() if hasattr(cfg, 'rnn') else 'RNN'} {cfg.hidden}",
            f"z {cfg.latent}" if service.is_latent else None, f"{cfg.mixtures} mixtures"]
    line = " · ".join(b for b in bits if b)
    extra = []
    if card.get("data"):
        n = card.get("train_inks")
        extra.append(f"trained on {n:,} {card['data']} inks" if isinstance(n, int) else f"data: {card['data']}")
    if card.get("steps"):
        extra.append(f"{card['steps']:,} steps")
    metrics = card.get("metrics") or {}
    elbo = next((metrics[k] for k in ("best_valid_elbo_per_point", "last_valid_elbo_per_point", "elbo_per_point")
                 if isinstance(metrics.get(k), (int, float))), None)
    if elbo is not None:
        extra.append(f"validation ELBO {elbo:.2f} nats/point")
    return line + ("  \n" + " · ".join(str(e) for e in extra) if extra else "")


# ----------------------------------------------------------------- input
def input_section(data: SessionData, style: figures.Style) -> Ink | None:
    """The input chooser and the chosen source; returns the current ink (or ``None``)."""
    source = st.segmented_control("Input", INPUT_SOURCES, default=INPUT_SOURCES[0], key="source",
                                  label_visibility="collapsed", required=True) or INPUT_SOURCES[0]
    if source == INPUT_SOURCES[1]:
        return upload_input(data)
    if source == INPUT_SOURCES[2]:
        return example_input(style)
    return draw_input(data, style)


def draw_input(data: SessionData, style: figures.Style) -> Ink | None:
    big = style.font_size > figures.DEFAULT_STYLE.font_size
    ink = pen_canvas("pen_canvas", height=340 if big else 270, line_width=4.2 if big else 2.6,
                     restore=data.last_drawing)
    data.last_drawing = ink
    if ink is not None and ink.num_points < 2:
        st.caption("Keep writing: the model needs at least two points.")
        return None
    if ink is not None:
        c1, c2 = st.columns([3, 2], vertical_alignment="center")
        added = c1.button("Add to my training set", icon=":material/playlist_add:", key="add_drawing",
                          help="Collect this drawing for retraining (Retrain tab).")
        if added and data.add_drawing(ink):
            st.toast("Drawing added to your training set")
        c2.caption(f"{len(data.drawings)} drawing(s) collected for retraining")
    return ink


def upload_input(data: SessionData) -> Ink | None:
    up = st.file_uploader("An ink file: IAM-OnDB XML, UJI text, InkML, Quick, Draw! ndjson, sketch-rnn npz "
                          "or this project's JSON", type=UPLOAD_TYPES, key="upload")
    if up is None:
        data.upload = None
        st.caption("No file? Pick one of the built-in examples instead.")
        return None
    if data.upload is None or data.upload.file_id != up.file_id:
        data.upload = parse_upload(up.file_id, up.name, up.getvalue())
    result = data.upload
    if result.error:
        st.error(result.error)
        return None
    inks = result.inks
    if len(inks) == 1:
        st.caption(ink_choice_label(0, inks[0]))
        return inks[0]
    if len(inks) <= MAX_SELECT_OPTIONS:
        idx = st.selectbox(f"{len(inks)} inks in {result.name}: pick one", range(len(inks)),
                           format_func=lambda i: ink_choice_label(i, inks[i]), key="upload_pick")
    else:
        idx = int(st.number_input(f"{len(inks)} inks in {result.name}: number", 1, len(inks), 1,
                                  key="upload_pick_n")) - 1
        st.caption(ink_choice_label(idx, inks[idx]))
    return inks[int(idx)]


def example_input(style: figures.Style) -> Ink | None:
    try:
        examples = builtin_examples()
    except Exception as e:  # noqa: BLE001
        st.error(one_line(f"Built-in examples are unavailable: {e}"))
        return None
    name = st.selectbox("Example", list(examples), key="example")
    ink = examples[name]
    panels.chart(figures.ink_figure([ink], style=style, height=int(style.height * 0.55)), "example_preview")
    return ink


# ----------------------------------------------------------------- page
def header() -> None:
    st.title(":material/draw: VRNN Handwriting Lab")
    st.caption("Write something. A variational RNN (Chung et al., 2015) continues it, and shows step by step "
               "where your ink surprised it and how its latent state moved.")


def main() -> None:
    st.set_page_config(page_title="VRNN Handwriting Lab", page_icon=":material/draw:", layout="wide",
                       initial_sidebar_state="expanded")
    data = session_data()
    service, settings, style, trace_seed = sidebar(data)
    st.html(PRESENTATION_CSS if style.font_size > figures.DEFAULT_STYLE.font_size else BASE_CSS)
    header()
    if service is None:
        st.error("No model could be loaded, so there is nothing to show. "
                 "Train the bundled model with the README's command, or set VRNN_APP_VRNN_MODEL.")
        return

    t0 = time.perf_counter()
    left, right = st.columns([5, 6], gap="large")
    with left:
        ink = input_section(data, style)
    with right:
        conts = panels.continuations_pane(ink, service, settings, style)

    st.divider()
    tabs = st.tabs(panels.TAB_LABELS, key="main_tab", on_change="rerun")
    trace = None
    if ink is not None and (tabs[0].open or tabs[5].open):
        trace = panels.safe_trace(service, ink, trace_seed)
    with tabs[0]:
        if tabs[0].open:
            panels.linked_views(trace, service, style) if ink is not None else panels.need_ink()
    with tabs[1]:
        if tabs[1].open:
            panels.replay_tab(ink, conts, style) if ink is not None else panels.need_ink()
    with tabs[2]:
        if tabs[2].open:
            panels.samples_tab(service, style)
    with tabs[3]:
        if tabs[3].open:
            panels.compare_tab(ink, service, data, trace_seed, style) if ink is not None else panels.need_ink()
    with tabs[4]:
        if tabs[4].open:
            panels.retrain_tab(data, service, ink, style)
    with tabs[5]:
        if tabs[5].open:
            panels.export_tab(ink, conts, trace, service, style, trace_seed) if ink is not None else panels.need_ink()
    elapsed_ms = (time.perf_counter() - t0) * 1000
    st.session_state["last_run_ms"] = elapsed_ms
    if os.environ.get("VRNN_APP_TIMING"):
        print(f"vrnn-app run {elapsed_ms:.0f} ms", file=sys.stderr, flush=True)
