"""The page's panels: continuations, the linked trace views, replay, samples, comparison,
retraining and exports. Streamlit calls only; computing is in :mod:`vrnn.app.compute`
and :mod:`vrnn.app.scores`, figures in :mod:`vrnn.app.figures` and
:mod:`vrnn.app.trace_views`, models in :mod:`vrnn.app.resources`; nothing here runs on
a worker thread. :mod:`vrnn.app.ui` (the page) imports this module, never the reverse.
"""

from __future__ import annotations

import contextlib

import numpy as np
import streamlit as st

from vrnn.ink import Ink
from vrnn.text import one_line

from . import exports, figures, scores, trace_views
from .compute import ADAPT_MIN_STEPS, ContinuationSettings, ModelService, adapt_steps, trace_totals
from .jobs import (
    MAX_CONCURRENT_TRAININGS,
    TrainingBusy,
    TrainingJob,
    TrainingRequest,
    running_trainings,
    split_train_valid,
)
from .player import time_player
from .resources import select_model_next_run, try_bundled
from .state import ACCEPTED_FORMATS, MAX_TRAINING_UPLOAD_MB, SessionData, parse_upload, plural

TAB_LABELS = (":material/insights: Surprise & latent dynamics", ":material/play_circle: Pen replay",
              ":material/auto_awesome: Samples", ":material/compare_arrows: VRNN vs RNN-GMM",
              ":material/model_training: Retrain", ":material/download: Export")
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
                 "toImageButtonOptions": {"format": "png", "scale": 2}}
REPLAY_SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)


def chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, theme=None)  # the figures carry their own look


def default(key: str, value) -> None:
    """Give a widget its first value through Session State (never also as a ``value=``
    argument: Streamlit warns when a keyed widget gets both)."""
    if key not in st.session_state:
        st.session_state[key] = value


def need_ink() -> None:
    st.info("Draw, upload or pick an example ink first.")


def safe(compute, what: str):
    """Run ``compute``; on any error show one line (never a traceback) and return ``None``."""
    try:
        return compute()
    except Exception as e:  # noqa: BLE001 - the page stays usable whatever the model says
        st.error(one_line(f"Could not {what}: {e}") or f"Could not {what}.")
        return None


def safe_trace(service: ModelService, ink: Ink, seed: int):
    return safe(lambda: service.trace(ink, seed=seed), "read this ink with the model")


# ----------------------------------------------------------------- continuations
def _next_seed() -> None:
    st.session_state["seed"] = int(st.session_state.get("seed", 0)) + 1


def auto_steps(prefix_steps: int) -> int:
    """Continuation length that follows the prefix: 3/4 of its model steps, 120 to 300.

    120 steps are about a word and a half at the bundled preprocessing (a letter is ~17
    steps): a short prefix (a letter, a digit, ``the``) is followed by words, not by a
    t-bar and a stray stroke."""
    return int(np.clip(round(0.75 * prefix_steps / 10) * 10, 120, 300))


PLACEHOLDERS = {
    "draw": "Write in the box on the left:<br>continuations appear here the moment you lift the pen.",
    "upload": "Upload an ink file on the left:<br>its continuations appear here.",
    "examples": "Pick an example on the left:<br>its continuations appear here.",
}


def continuations_pane(ink: Ink | None, service: ModelService, options: dict, style: figures.Style,
                       source: str = "draw") -> list[Ink] | None:
    """The hero view: continuations of the ink in rows at its own scale. Returns the
    continuations as drawn (cut where the writing ends when that option is on)."""
    head, more = st.columns([2, 1], vertical_alignment="bottom")
    head.subheader("What comes next")
    more.button("More", icon=":material/casino:", key="more", on_click=_next_seed, disabled=ink is None, width="stretch",
                help="New continuations from the next seed (reproducible: the seed is in the sidebar).")
    if ink is None:
        # A chart even without ink: the browser loads plotly now, not on the first pen-up.
        chart(figures.placeholder_figure(PLACEHOLDERS.get(source, PLACEHOLDERS["draw"]), style,
                                         height=style.scaled_height(0.85)), "continuations")
        return None
    ink_steps = 0  # the ink's length in model steps, read only when needed
    if options["auto_length"] or options["adapt"] == "long":
        trace = safe(lambda: service.trace(ink, seed=options["trace_seed"]), "read this ink with the model")
        if trace is None:
            return None
        ink_steps = trace.steps
    steps = auto_steps(ink_steps) if options["auto_length"] else options["steps"]
    adapt = adapt_steps(options["adapt"], ink_steps)
    settings = ContinuationSettings(n=options["n"], steps=int(steps), temperature=options["temperature"],
                                    seed=options["seed"], z_mode=options["z_mode"], adapt=adapt)
    # adapting takes about a second the first time for an ink (cached after that)
    busy = st.spinner(f"Adapting a copy of the model to this ink ({settings.adapt} steps)…") if settings.adapt \
        else contextlib.nullcontext()
    with busy:
        conts = safe(lambda: service.continuations(ink, settings), "continue this ink")
    if conts is None:
        return None
    shown = list(conts)
    if options["natural_end"]:
        scale, right = figures.ink_scale(ink.points), float(ink.points[:, 0].max())
        shown = [figures.natural_end(c, scale, after_x=right) for c in conts]
    chart(figures.continuations_figure(ink, shown, layout=options["layout"], style=style), "continuations")
    z = {"sample": "prior sample", "mean": "prior mean"}[settings.z_mode] if service.is_latent else "no latents"
    length = f"{settings.steps} steps" + (" (follows the prefix)" if options["auto_length"] else "")
    cut = " · cut where the writing ends" if options["natural_end"] else ""
    cut += f" · by a copy adapted to this ink ({settings.adapt} steps)" if settings.adapt else ""
    cut += f" · not adapted (under {ADAPT_MIN_STEPS} steps)" if options["adapt"] == "long" and not settings.adapt else ""
    st.container(key="cont_caption").caption(
        f"{plural(settings.n, 'continuation')} of a {ink.num_points}-point ink · {length}{cut} · "
        f"temperature {settings.temperature:g} · seed {settings.seed} · z: {z} · {service.name}")
    return shown


# ----------------------------------------------------------------- linked views
def linked_views(trace, service: ModelService, style: figures.Style, width_px: int = 1000) -> None:
    """Every per-step view of one trace in one figure, linked by its time slider; Play and
    the slider run in the browser (plotly frames), so nothing reruns while they move."""
    if trace is None:
        return
    T = int(trace.steps)
    if T < 1:
        st.info("This ink has no steps after preprocessing.")
        return
    totals = trace_totals(trace)
    m = st.columns(4)
    m[0].metric("Steps", f"{T}")
    m[1].metric("KL total, nats", f"{totals['kl']:.1f}", help="Sum over steps of KL(q(z_t | x_≤t) ‖ p(z_t | x_<t))")
    m[2].metric("NLL total, nats", f"{totals['nll']:.1f}", help="Sum of the reconstruction −log p(x_t | z_t, h_{t-1})")
    m[3].metric("ELBO, nats per point", f"{-totals['neg_elbo_per_step']:.3f}",
                help="−(KL + NLL) / scored points (step 0 is given, not scored): higher is better. The same "
                     "measure as the VRNN vs RNN-GMM tab (which averages over several samples of z).")
    if not service.is_latent:
        st.info("The RNN-GMM baseline has no latent variables: no KL, no latent trajectories. "
                "Pick the VRNN in the sidebar to see them.")
    fig, spec = trace_views.trace_views(trace, style=style, width_px=width_px)
    st.caption("**▶ Play** or drag the slider: one time cursor moves through every view below, in your browser "
               "(nothing is recomputed while it moves).")
    key = f"{T}:{float(np.sum(trace.kl)):.6g}:{float(np.sum(trace.nll)):.6g}:{style.font_size}:{width_px}"
    time_player("trace_player", dict(spec, chart=".st-key-trace_views", key=key))
    chart(fig, "trace_views")


# ----------------------------------------------------------------- replay, samples
def replay_tab(ink: Ink, conts: list[Ink] | None, style: figures.Style) -> None:
    default("replay_speed", 1.0)
    a, b = st.columns([3, 2], vertical_alignment="bottom")
    speed = b.select_slider("Speed", REPLAY_SPEEDS, key="replay_speed", format_func=lambda v: f"{v:g}×")
    fig = figures.replay_figure(ink, conts or [], speed=float(speed), style=style)
    seconds = (fig.layout.meta or {}).get("replay_seconds") if isinstance(fig.layout.meta, dict) else None
    clock = "the pen's own timestamps" if ink.times is not None else "a steady pen (this ink has no timestamps)"
    a.caption(f"Press **▶ Replay**: the prefix is written at {clock}, then every continuation grows at the same "
              f"pen speed" + (f" · {seconds:.1f} s at {speed:g}×" if seconds else "") + ".")
    chart(fig, "replay")


def _next_sample_seed() -> None:
    st.session_state["sample_seed"] = int(st.session_state.get("sample_seed", 0)) + 1


def samples_tab(service: ModelService, style: figures.Style) -> None:
    for key, value in (("sample_n", 4), ("sample_steps", 300), ("sample_temp", 0.7), ("sample_seed", 0)):
        default(key, value)
    c = st.columns([1, 2, 2, 1, 1], vertical_alignment="bottom")
    n = c[0].selectbox("Samples", [2, 4, 6, 8], key="sample_n")
    steps = c[1].slider("Length (steps)", 50, 800, step=25, key="sample_steps")
    temperature = c[2].slider("Temperature", 0.1, 2.0, step=0.05, key="sample_temp")
    seed = c[3].number_input("Seed", 0, 1_000_000, key="sample_seed")
    c[4].button("New", icon=":material/casino:", key="sample_more", on_click=_next_sample_seed, width="stretch")
    samples = safe(lambda: service.samples(int(n), int(steps), float(temperature), int(seed)), "sample")
    if samples is not None:
        chart(figures.samples_figure(samples, style=style, cols=2 if n <= 4 else 3,
                                     title=f"Unconditional samples from {service.name}"), "samples")


# ----------------------------------------------------------------- comparison
def compare_tab(ink: Ink, service: ModelService, trace_seed: int, style: figures.Style) -> None:
    latent = service if service.is_latent else try_bundled("vrnn")[0]
    baseline = service if not service.is_latent else try_bundled("rnn")[0]
    if latent is None or baseline is None:
        missing = "RNN-GMM baseline" if baseline is None else "VRNN"
        st.info(f"The comparison needs the bundled {missing} (pretrained/{'rnn' if baseline is None else 'vrnn'}).")
        return
    st.markdown(f"**{latent.name}** vs **{baseline.name}** on this ink. Every number is a log-likelihood per scored "
                "point in nats, **higher is better**: the VRNN's ELBO and IWAE are lower bounds on its "
                "log-likelihood (IWAE the tighter one), the RNN-GMM's log-likelihood is exact.")
    default("iwae_k", 16)
    K = st.select_slider("Importance samples K for the IWAE bound", [0, 4, 16, 64, 256], key="iwae_k")
    with st.spinner("Scoring…"):
        est = safe(lambda: scores.bounds(latent, ink, int(K)), f"evaluate {latent.name}")
        exact = safe(lambda: scores.exact(baseline, ink), f"evaluate {baseline.name}")
    if est is None or exact is None:
        return
    m = st.columns(3)
    m[0].metric(f"{latent.name}: ELBO", f"{est['elbo']:.3f} ± {est['elbo_se']:.3f}")
    if "iwae" in est:
        m[1].metric(f"{latent.name}: IWAE (K={K})", f"{est['iwae']:.3f} ± {est['iwae_se']:.3f}")
    m[2].metric(f"{baseline.name}: log-likelihood", f"{exact:.3f}")
    st.caption(f"± is the Monte Carlo standard error over {est['repeats']} fixed noise draws (seeds 0–"
               f"{est['repeats'] - 1}, the same at every K, so moving K changes only K). The ELBO does not depend "
               f"on K: it is always the mean of {est['elbo_samples']} samples of z. The RNN-GMM needs no sampling.")
    best = est.get("iwae", est["elbo"])
    best_se = est.get("iwae_se", est["elbo_se"])
    gap = best - exact
    bound = f"IWAE bound (K={K})" if "iwae" in est else "ELBO"
    if abs(gap) <= 2 * best_se:
        st.info(f"The VRNN's {bound} and the RNN-GMM's log-likelihood are within Monte Carlo noise of each "
                f"other on this ink ({gap:+.3f} ± {best_se:.3f} nats per point).")
    elif gap > 0:
        st.success(f"Even its {bound} puts the VRNN {gap:.3f} nats per point above the RNN-GMM on this ink: "
                   "the VRNN explains it better.")
    else:
        st.info(f"The VRNN's {bound} is {-gap:.3f} nats per point below the RNN-GMM's exact log-likelihood. "
                "A bound can only understate the VRNN; more importance samples tighten it.")
    a, b = st.columns(2)
    with a:
        chart(figures.comparison_figure(scores.rows(latent.name, est, baseline.name, exact, int(K)), style=style,
                                        title="Log-likelihood per point (bounds), higher is better"), "compare_bars")
    tv = safe(lambda: latent.trace(ink, seed=trace_seed), f"trace {latent.name}")
    tr = safe(lambda: baseline.trace(ink, seed=trace_seed), f"trace {baseline.name}")
    if tv is not None and tr is not None:
        curves = {f"{latent.name}: −(KL + NLL), one z sample": -(np.asarray(tv.kl) + np.asarray(tv.nll)),
                  f"{baseline.name}: −NLL (exact)": -np.asarray(tr.nll)}
        with b:
            for v in curves.values():
                v[0] = np.nan  # step 0 is given, not scored
            chart(figures.per_step_comparison_figure(curves, style=style,
                                                     title="Per step along the ink (step 0 is given)"),
                  "compare_steps")


# ----------------------------------------------------------------- retraining
RETRAIN_DEFAULTS = {"train_minutes": 1.0, "train_max_steps": 0, "train_from": "fine-tune",
                    "train_use_drawings": True, "train_use_current": False}


def _training_inks(data: SessionData, ink: Ink | None) -> tuple[list[Ink], list[str]]:
    """The inks chosen in the Retrain tab and one-line errors of unreadable files.

    Uploaded training files are parsed once and kept in the session (the uploader forgets
    its files when the tab is not on the page); each has its own "use" checkbox.
    """
    inks: list[Ink] = []
    errors: list[str] = []
    for f in st.session_state.get("train_files") or []:
        if f.file_id not in data.training_uploads:
            data.training_uploads[f.file_id] = parse_upload(f.file_id, f.name, f.getvalue(), training=True)
    for fid, res in list(data.training_uploads.items()):
        if res.error:
            errors.append(res.error)
            continue
        key = f"train_use_{fid}"
        default(key, True)
        if st.checkbox(f"{res.name}: {plural(len(res.inks), 'ink')}, "
                       f"{plural(sum(i.num_points for i in res.inks), 'point')}", key=key):
            inks.extend(res.inks)
    if data.training_uploads:
        st.button("Forget the uploaded files", key="train_forget", on_click=_forget_uploads, args=(data,))
    if st.checkbox(f"My collected drawings ({len(data.drawings)})", key="train_use_drawings"):
        inks.extend(data.drawings)
    if st.checkbox("The current ink", key="train_use_current", disabled=ink is None) and ink is not None:
        inks.append(ink)
    return inks, errors


def _forget_uploads(data: SessionData) -> None:
    for fid in list(data.training_uploads):
        st.session_state.pop(f"train_use_{fid}", None)
    data.training_uploads.clear()


def _adopt(data: SessionData, job: TrainingJob) -> None:
    """Make a finished job's model selectable, and selected, in the sidebar (next run)."""
    if job.model is None:
        return
    if not getattr(job, "adopted_as", None):
        label = job.request.label
        name = data.add_model(label, ModelService(job.model, label))
        data.models[name].name = name
        job.adopted_as = name
    select_model_next_run(job.adopted_as)


def _start_training(data: SessionData, service: ModelService, inks: list[Ink]) -> None:
    if data.job is not None and data.job.running:
        st.session_state["train_message"] = "This session already trains a model: cancel it or wait."
        return
    data.job_counter += 1
    minutes = float(st.session_state.get("train_minutes", 1.0))
    max_steps = int(st.session_state.get("train_max_steps", 0)) or None
    fine = st.session_state.get("train_from", "fine-tune") == "fine-tune"
    request = TrainingRequest(inks=tuple(inks), minutes=minutes, max_steps=max_steps, fine_tune=fine,
                              seed=int(st.session_state.get("seed", 0)), label=f"Retrained #{data.job_counter}",
                              base_name=service.name if fine else None)
    job = TrainingJob(request, base_model=service.model)
    try:
        job.start()
    except TrainingBusy as e:
        st.session_state["train_message"] = one_line(str(e))
        return
    data.job = job
    st.session_state["train_message"] = None


def retrain_tab(data: SessionData, service: ModelService, ink: Ink | None, style: figures.Style) -> None:
    for key, value in RETRAIN_DEFAULTS.items():
        default(key, value)
    st.markdown("Train on your own handwriting: upload ink files and/or collect drawings (Draw → "
                "**Add to my training set**). Training runs in the background; the bundled model is never "
                "changed, the result becomes a new model in the sidebar and can be downloaded.")
    a, b = st.columns(2, gap="large")
    with a:
        st.file_uploader(f"Training ink files, up to {MAX_TRAINING_UPLOAD_MB} MB each", accept_multiple_files=True,
                         key="train_files", help=f"The app reads {ACCEPTED_FORMATS}.")
        inks, errors = _training_inks(data, ink)
    with b:
        st.slider("Time budget (minutes)", 0.25, 10.0, step=0.25, key="train_minutes")
        st.number_input("Step limit (0: none)", 0, 100_000, step=50, key="train_max_steps")
        st.radio("Start from", ["fine-tune", "scratch"], key="train_from", horizontal=True,
                 format_func=lambda m: {"fine-tune": "fine-tune the selected model",
                                        "scratch": "a small new model"}[m])
        if st.session_state.get("train_from") == "fine-tune":
            st.caption(f"Fine-tunes a copy of **{service.name}**; it stops early once validation stops improving.")
    for e in errors:
        st.error(e)
    busy = data.job is not None and data.job.running
    points = sum(i.num_points for i in inks)
    train, valid = split_train_valid(inks) if inks else ([], [])
    split = (f"{plural(len(train), 'ink')} to train on, {len(valid)} held out for validation"
             if len(inks) >= 2 else
             "a single ink, so validation uses the training ink itself (it cannot show overfitting)"
             if inks else "no ink chosen yet")
    st.caption(f"Training set: {plural(len(inks), 'ink')}, {plural(points, 'point')} ({split}) · trainings running "
               f"in this app: {running_trainings()} of at most {MAX_CONCURRENT_TRAININGS}")
    st.button("Start training", icon=":material/rocket_launch:", key="train_start", type="primary",
              disabled=busy or not inks, on_click=_start_training, args=(data, service, inks))
    if st.session_state.get("train_message"):
        st.warning(st.session_state["train_message"])
    if data.job is not None:
        training_progress(data, style)


def _outcome(job: TrainingJob, snap: dict) -> str | None:
    """One line on how a finished training ended: early stop, budget, and which weights it kept."""
    if not job.done:
        return None
    hist = snap["history"]
    best = max((h for h in hist if isinstance(h.get("valid_elbo"), (int, float))),
               key=lambda h: h["valid_elbo"], default=None)
    last_step = snap["step"]
    bits = []
    stop = str((snap["last"] or {}).get("message") or "")
    if "early" in stop.lower() or "patience" in stop.lower():
        bits.append(f"stopped early at step {last_step}: validation had stopped improving")
    elif snap["status"] == "cancelled":
        bits.append(f"cancelled at step {last_step}")
    else:
        bits.append(f"ran its budget ({last_step} steps)")
    if best is not None:
        bits.append(f"keeps the weights of step {best['step']}, its best validation ELBO "
                    f"({best['valid_elbo']:.3f} nats/point on its own validation inks)")
    return "Training " + "; ".join(bits) + "."


def training_progress(data: SessionData, style: figures.Style) -> None:
    """Progress, live curves, cancel, and the result: a fragment that polls while training runs."""
    job = data.job
    polling = not job.done

    @st.fragment(run_every=1.0 if polling else None)
    def progress_view() -> None:
        snap = job.snapshot()
        status = snap["status"]
        if polling and job.done:
            st.rerun()  # finished: rerun the page once so the result shows
        last = snap["last"]
        text = f"{status} · step {snap['step']} · {snap['elapsed']:.0f} s"
        if isinstance(last.get("elbo"), (int, float)):
            text += f" · training ELBO {last['elbo']:.3f} nats/point"
        st.progress(snap["fraction"], text=text)
        if status == "running":
            st.button("Cancel", icon=":material/cancel:", key="train_cancel", on_click=job.cancel)
        chart(figures.training_curves_figure(snap["history"], style=style, title="Training curves"), "train_curves")
        outcome = _outcome(job, snap)
        if outcome:
            st.caption(outcome)
        if status == "failed":
            st.error(f"Training failed: {snap['error']}")
        elif job.model is not None:
            adopted = getattr(job, "adopted_as", None)
            c1, c2 = st.columns(2)
            if adopted and st.session_state.get("model_name") == adopted:
                c1.success(f"In use: “{adopted}” is selected in the sidebar.")
            elif c1.button("Use this model", icon=":material/check_circle:", key="train_adopt", type="primary"):
                _adopt(data, job)
                st.rerun(scope="app")  # the sidebar lists it, selected, in this very rerun
            c2.download_button("Download weights + config (zip)", icon=":material/download:",
                               data=lambda m=job.model: exports.model_zip(m),
                               file_name=f"vrnn-retrained-{data.job_counter}.zip", mime="application/zip",
                               on_click="ignore", key="train_download")

    progress_view()


# ----------------------------------------------------------------- exports
def export_tab(ink: Ink, conts: list[Ink] | None, trace, service: ModelService, style: figures.Style) -> None:
    stem = exports.safe_stem(ink.label, "ink")
    conts = conts or []
    st.markdown("**Ink**")
    c = st.columns(4)
    c[0].download_button("Ink (JSON)", data=lambda: exports.inks_json([ink]), file_name=f"{stem}.json",
                         mime="application/json", on_click="ignore", key="dl_ink_json")
    c[1].download_button("Ink + continuations (JSON)", data=lambda: exports.inks_json([ink, *conts]),
                         file_name=f"{stem}-continued.json", mime="application/json", on_click="ignore",
                         key="dl_cont_json")
    c[2].download_button("Ink + continuations (SVG)", data=lambda: exports.inks_svg([ink, *conts]),
                         file_name=f"{stem}-continued.svg", mime="image/svg+xml", on_click="ignore",
                         key="dl_cont_svg")
    if trace is not None:
        c[3].download_button("Trace (CSV)", data=lambda: exports.trace_csv(trace), file_name=f"{stem}-trace.csv",
                             mime="text/csv", on_click="ignore", key="dl_trace_csv")
    st.markdown("**Figures** (interactive HTML that works offline; for PNG use the camera icon on any figure)")
    # label -> (file name part, builder)
    builders = {
        "Continuations": ("continuations", lambda: figures.continuations_figure(ink, conts, style=style)),
        "Pen replay (animated)": ("pen-replay", lambda: figures.replay_figure(
            ink, conts, speed=float(st.session_state.get("replay_speed", 1.0)), style=style)),
    }
    if trace is not None:
        builders.update({
            "All linked views (animated)": ("linked-views", lambda: trace_views.trace_views_figure(trace, style=style)),
            "KL along the ink": ("kl-along-the-ink", lambda: trace_views.kl_ink_figure(trace, style=style)),
            "KL and NLL per step": ("kl-nll-per-step", lambda: trace_views.step_bars_figure(trace, style=style)),
        })
        if service.is_latent:
            builders.update({
                "Posterior vs prior, whitened": ("posterior-vs-prior",
                                                 lambda: trace_views.latent_departure_figure(trace, style=style)),
                "Latent mean ± σ": ("latent-mean-sigma", lambda: trace_views.latent_dims_figure(trace, style=style)),
                "KL share per latent unit": ("kl-share-heatmap",
                                             lambda: trace_views.kl_heatmap_figure(trace, style=style)),
            })
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    which = a.selectbox("Figure", list(builders), key="export_figure")
    slug, build = builders[which]
    b.download_button("Figure (HTML)", data=lambda: exports.figure_html(build()), file_name=f"{stem}-{slug}.html",
                      mime="text/html", on_click="ignore", key="dl_figure_html", width="stretch")
