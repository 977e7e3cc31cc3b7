"""The Streamlit page: sidebar, input (canvas / upload / examples), continuations and tabs.

``app.py`` calls :func:`main`. Layers, each importing only those below it:
:mod:`vrnn.app.ui` (this page) -> :mod:`vrnn.app.panels` (the tabs) ->
:mod:`vrnn.app.resources` (shared models) -> :mod:`vrnn.app.compute`,
:mod:`vrnn.app.figures`, :mod:`vrnn.app.trace_views` (no Streamlit).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import streamlit as st

from vrnn.datasets import COMPOSED_LINES
from vrnn.inference import ADAPT_STEPS
from vrnn.ink import Ink
from vrnn.text import one_line

from . import figures, panels
from .canvas import pen_canvas
from .compute import ADAPT_MIN_STEPS, ADAPT_MODES
from .examples import builtin_examples
from .resources import SELECT_NEXT, available_models, session_data, try_bundled
from .state import ACCEPTED_FORMATS, MAX_INK_UPLOAD_MB, SessionData, ink_choice_label, parse_upload
from .viewport import STACK_BELOW_PX, main_width

INPUT_SOURCES = (":material/draw: Draw", ":material/upload_file: Upload", ":material/menu_book: Examples")
SOURCE_NAMES = dict(zip(INPUT_SOURCES, ("draw", "upload", "examples")))
UPLOAD_TYPES = None  # formats are detected from name and content; a wrong file gets a one-line error
MAX_SELECT_OPTIONS = 1000
#: The page icon, served by this app (an emoji or material icon would be fetched from a CDN).
PAGE_ICON = Path(__file__).resolve().parent / "icon.png"

#: Widget values that must survive runs where their widget is not on the page (another
#: tab open, another input source): Streamlit drops a widget's state when it is not drawn.
PERSISTENT_KEYS = ("cont_n", "cont_steps", "cont_auto", "cont_stop", "cont_adapt", "cont_temp", "seed", "z_mode",
                   "cont_layout", "presentation", "trace_seed", "replay_speed", "sample_n", "sample_steps",
                   "sample_temp", "sample_seed", "iwae_k", *panels.RETRAIN_DEFAULTS, "export_figure", "example")

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
SIDEBAR_DEFAULTS = {"cont_n": 4, "cont_steps": 200, "cont_auto": True, "cont_stop": True, "cont_adapt": "long",
                    "cont_temp": 0.8, "seed": 0, "z_mode": "sample", "cont_layout": "rows", "presentation": False,
                    "trace_seed": 0}


def keep_widget_state() -> None:
    for key in PERSISTENT_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


# ----------------------------------------------------------------- sidebar
def sidebar(data: SessionData):
    """Model choice, continuation controls, display; returns (service, options, style, trace_seed)."""
    sb = st.sidebar
    sb.markdown("### Model")
    models = available_models(data)
    if not models:
        _, error = try_bundled("vrnn")
        sb.error(error or "No model available.")
        return None, None, figures.DEFAULT_STYLE, 0
    names = list(models)
    wanted = st.session_state.pop(SELECT_NEXT, None)
    if wanted in names:
        st.session_state["model_name"] = wanted
    if st.session_state.get("model_name") not in names:
        st.session_state["model_name"] = names[0]
    name = sb.selectbox("Model", names, key="model_name", label_visibility="collapsed")
    service = models[name]
    sb.caption(model_summary(service))

    for key, value in SIDEBAR_DEFAULTS.items():
        panels.default(key, value)
    sb.markdown("### Continuations")
    n = sb.slider("How many", 1, 12, key="cont_n")
    auto = sb.toggle("Length follows the prefix", key="cont_auto",
                     help="About 3/4 of the prefix's length in model steps (120 to 300).")
    steps = sb.slider("Length (steps)", 20, 600, step=10, key="cont_steps", disabled=auto)
    natural = sb.toggle("Stop where the writing naturally ends", key="cont_stop",
                        help="Cut each continuation before a new line or a stray far stroke, else before its last "
                             "word break (white space): whole words, not the half word where the length ran out. "
                             "A t-bar or dot added to your ink, or a stroke back over a word, ends nothing.")
    adapt = sb.radio("Adapt to this hand", ADAPT_MODES, key="cont_adapt", horizontal=True,
                     format_func=lambda m: {"off": "off", "long": f"{ADAPT_MIN_STEPS}+ steps", "always": "always"}[m],
                     help=f"Before continuing, a copy of the model practises your ink for {ADAPT_STEPS} steps "
                          "(dynamic evaluation, about a second on a CPU, once per ink), then writes on: more of "
                          "your letter shapes, slant and spacing, now and then a wild stroke. On halves of held-out "
                          "synthetic lines the style score rose from 0.751 to 0.806 at temperature 0.8 (same-writer "
                          "oracle 0.829), on real Omniglot hands from 0.654 to 0.701 (oracle 0.763); on one-word "
                          "prefixes it did not move (the earlier model), and on a single letter it can wander, so by "
                          f"default it adapts to inks of {ADAPT_MIN_STEPS} model steps or more (style 0.796 and "
                          "0.707 then). The model itself, the KL and the latent views are unchanged.")
    temperature = sb.slider("Temperature", 0.1, 2.0, step=0.05, key="cont_temp",
                            help="Divides the mixture and pen logits by T and multiplies every sigma (pen offsets "
                                 "and the prior over z) by √T: below 1 tidier, above 1 wilder.")
    seed = sb.number_input("Seed", 0, 1_000_000, step=1, key="seed",
                           help="Same seed, same continuations. “More” moves to the next seed.")
    z_mode = sb.radio("Latent z after the prefix", ["sample", "mean"], key="z_mode", horizontal=True,
                      format_func=lambda m: {"sample": "prior sample", "mean": "prior mean"}[m],
                      disabled=not service.is_latent,
                      help="Prior sample: z drawn from p(z_t | h_{t-1}) at every step, the VRNN as trained. "
                           "Prior mean: z at its mean, less noise; on held-out synthetic writers it keeps the "
                           "writer's style better (style score 0.780 vs 0.751 at temperature 0.8).")
    layout = sb.radio("Layout", ["rows", "overlay"], key="cont_layout", horizontal=True,
                      format_func=lambda m: {"rows": "one row each", "overlay": "overlaid"}[m])

    sb.markdown("### Display")
    presentation = sb.toggle("Presentation mode", key="presentation",
                             help="Bigger fonts, lines and markers for talks and projectors.")
    with sb.expander("Advanced"):
        trace_seed = st.number_input("Trace seed (posterior sample of z)", 0, 1_000_000, key="trace_seed")
    options = dict(n=int(n), steps=int(steps), auto_length=bool(auto), natural_end=bool(natural),
                   temperature=float(temperature), seed=int(seed), layout=layout, trace_seed=int(trace_seed),
                   z_mode=z_mode if service.is_latent else "sample", adapt=adapt)
    style = figures.Style.presentation() if presentation else figures.DEFAULT_STYLE
    return service, options, style, int(trace_seed)


def mixture_text(mixture) -> str:
    """A card's data mixture in a few words: ``"synthetic 45% · omniglot.npz 25% · ..."``
    (file sources by their file name; empty unless it is a list of sources)."""
    if not isinstance(mixture, list) or not mixture:
        return ""
    parts = []
    try:
        total = sum(float(m["weight"]) for m in mixture) or 1.0
        for m in mixture:
            source = str(m["source"])
            prefix = next((p for p in COMPOSED_LINES if source.startswith(p)), "")
            path = source[len(prefix):]
            name = f"{prefix[:-1]} " if prefix else ""
            parts.append(f"{name}{os.path.basename(path.rstrip('/')) or path} {100 * float(m['weight']) / total:.0f}%")
    except (KeyError, TypeError, ValueError):
        return ""
    return " · ".join(parts)


def model_summary(service) -> str:
    """The sidebar's model card: architecture, data, steps and its own validation score."""
    cfg = service.model.config
    card = getattr(service.model, "card", {}) or {}
    kind = "VRNN-GMM" if service.is_latent else "RNN-GMM (no latents)"
    bits = [f"{kind}: {cfg.rnn.upper() if hasattr(cfg, 'rnn') else 'RNN'} {cfg.hidden}",
            f"z {cfg.latent}" if service.is_latent else None, f"{cfg.mixtures} mixtures"]
    line = " · ".join(b for b in bits if b)
    extra = []
    data = str(card.get("data") or "").strip()
    n = card.get("train_inks")
    mixture = mixture_text(card.get("mixture"))
    if mixture:
        extra.append(f"trained on {n:,} inks: {mixture}" if isinstance(n, int) else f"trained on {mixture}")
    elif data or isinstance(n, int):
        # "synthetic" -> "20,000 synthetic inks"; "inks uploaded or drawn in the app" stays as it is
        what = data if data.startswith("inks") or data.endswith("inks") else (f"{data} inks" if data else "inks")
        extra.append(f"trained on {n:,} {what}" if isinstance(n, int) else f"trained on {what}")
    if card.get("fine_tuned_from"):
        extra.append(f"fine-tuned from {card['fine_tuned_from']}")
    if card.get("steps"):
        before = lineage_steps(card)
        extra.append(f"{sum(before) + card['steps']:,} steps ({' + '.join(f'{n:,}' for n in before)} + "
                     f"{card['steps']:,} continued)" if before else f"{card['steps']:,} steps")
    metrics = card.get("metrics") or {}
    elbo = next((metrics[k] for k in ("best_valid_elbo_per_point", "last_valid_elbo_per_point", "elbo_per_point")
                 if isinstance(metrics.get(k), (int, float))), None)
    if elbo is not None:
        if card.get("trained_in"):
            # another validation set than the bundled model's: a number of its own, not a ranking
            where = "its training inks" if card.get("validated_on_training_inks") else \
                f"its own {plural_inks(card.get('valid_inks'))} held out"
            extra.append(f"ELBO {elbo:.2f} nats/point on {where} (not comparable with other models' numbers)")
        else:
            extra.append(f"validation ELBO {elbo:.2f} nats/point")
    return line + ("  \n" + " · ".join(str(e) for e in extra) if extra else "")


def lineage_steps(card: dict) -> list[int]:
    """The steps of every run a model was continued from (``--init-from``), oldest first."""
    steps, parent = [], card.get("init_from")
    while isinstance(parent, dict) and isinstance(parent.get("steps"), int) and parent["steps"] > 0:
        steps.insert(0, parent["steps"])
        parent = parent.get("init_from")
    return steps


def plural_inks(n) -> str:
    return f"{n} ink" + ("" if n == 1 else "s") if isinstance(n, int) else "inks"


# ----------------------------------------------------------------- input
def input_section(data: SessionData, style: figures.Style) -> tuple[Ink | None, str]:
    """The input chooser and the chosen source; returns the current ink (or ``None``) and the source."""
    source = st.segmented_control("Input", INPUT_SOURCES, default=INPUT_SOURCES[0], key="source",
                                  label_visibility="collapsed", required=True) or INPUT_SOURCES[0]
    if source == INPUT_SOURCES[1]:
        return upload_input(data), "upload"
    if source == INPUT_SOURCES[2]:
        return example_input(style), "examples"
    return draw_input(data, style), "draw"


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
    up = st.file_uploader(f"An ink file (up to {MAX_INK_UPLOAD_MB} MB)", type=UPLOAD_TYPES, key="upload",
                          help=f"The app reads {ACCEPTED_FORMATS}; the format is found from the file itself.")
    if up is None:
        data.upload = None  # no stale error from an earlier file
        st.caption(f"The app reads {ACCEPTED_FORMATS}. No file? Pick one of the built-in examples instead.")
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
    st.set_page_config(page_title="VRNN Handwriting Lab", page_icon=str(PAGE_ICON) if PAGE_ICON.exists() else None,
                       layout="wide", initial_sidebar_state="expanded")
    keep_widget_state()
    data = session_data()
    service, options, style, trace_seed = sidebar(data)
    st.html(PRESENTATION_CSS if style.font_size > figures.DEFAULT_STYLE.font_size else BASE_CSS)
    header()
    width_px = main_width()  # the browser's answer (the layout of the linked views follows it)
    if service is None:
        st.error("No model could be loaded, so there is nothing to show. "
                 "Train the bundled model with the README's command, or set VRNN_APP_VRNN_MODEL.")
        return

    t0 = time.perf_counter()
    # side by side, or on a narrow page (a projector with the sidebar open) one above the other
    left, right = (st.columns([5, 6], gap="large") if width_px >= STACK_BELOW_PX
                   else (st.container(), st.container()))
    with left:
        ink, source = input_section(data, style)
    with right:
        conts = panels.continuations_pane(ink, service, options, style, source)

    st.divider()
    tabs = st.tabs(panels.TAB_LABELS, key="main_tab", on_change="rerun")
    trace = None
    if ink is not None and (tabs[0].open or tabs[5].open):
        trace = panels.safe_trace(service, ink, trace_seed)
    with tabs[0]:
        if tabs[0].open:
            panels.linked_views(trace, service, style, width_px) if ink is not None else panels.need_ink()
    with tabs[1]:
        if tabs[1].open:
            panels.replay_tab(ink, conts, style) if ink is not None else panels.need_ink()
    with tabs[2]:
        if tabs[2].open:
            panels.samples_tab(service, style)
    with tabs[3]:
        if tabs[3].open:
            panels.compare_tab(ink, service, trace_seed, style) if ink is not None else panels.need_ink()
    with tabs[4]:
        if tabs[4].open:
            panels.retrain_tab(data, service, ink, style)
    with tabs[5]:
        if tabs[5].open:
            panels.export_tab(ink, conts, trace, service, style) if ink is not None else panels.need_ink()
    elapsed_ms = (time.perf_counter() - t0) * 1000
    st.session_state["last_run_ms"] = elapsed_ms
    if os.environ.get("VRNN_APP_TIMING"):
        print(f"vrnn-app run {elapsed_ms:.0f} ms", file=sys.stderr, flush=True)
