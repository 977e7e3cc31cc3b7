"""The page's panels: continuations, the linked trace views, replay, samples, comparison,
retraining and exports. Streamlit calls only; computing is in :mod:`vrnn.app.compute`,
figures in :mod:`vrnn.app.figures`, and nothing here runs on a worker thread.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from vrnn.ink import Ink
from vrnn.text import one_line

from . import exports, figures
from .compute import ContinuationSettings, ModelService, comparison_rows, trace_totals
from .jobs import (
    MAX_CONCURRENT_TRAININGS,
    TrainingBusy,
    TrainingJob,
    TrainingRequest,
    running_trainings,
)
from .state import SessionData, parse_upload

TAB_LABELS = (":material/insights: Surprise & latent dynamics", ":material/play_circle: Pen replay",
              ":material/auto_awesome: Samples", ":material/compare_arrows: VRNN vs RNN-GMM",
              ":material/model_training: Retrain", ":material/download: Export")
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
                 "toImageButtonOptions": {"format": "png", "scale": 2}}
PLAY_INTERVAL_S = 0.3
PLAY_TICKS = 60  # a replay of the time cursor takes about PLAY_TICKS * PLAY_INTERVAL_S seconds


def chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG)


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


def continuations_pane(ink: Ink | None, service: ModelService, settings: ContinuationSettings,
                       style: figures.Style) -> list[Ink] | None:
    head, more = st.columns([2, 1], vertical_alignment="bottom")
    head.subheader("What comes next")
    more.button("More", icon=":material/casino:", key="more", on_click=_next_seed, disabled=ink is None, width="stretch",
                help="New continuations from the next seed (reproducible: the seed is in the sidebar).")
    if ink is None:
        # A chart even without ink: the browser loads plotly now, not on the first pen-up.
        chart(figures.placeholder_figure("Write in the box on the left (or upload, or pick an example):<br>"
                                         "continuations appear here the moment you lift the pen.",
                                         style, height=style.scaled_height(0.85)), "continuations")
        return None
    conts = safe(lambda: service.continuations(ink, settings), "continue this ink")
    if conts is None:
        return None
    layout = st.session_state.get("cont_layout", "overlay")
    chart(figures.continuations_figure(ink, conts, layout=layout, style=style), "continuations")
    z = {"sample": "prior sample", "mean": "prior mean"}[settings.z_mode] if service.is_latent else "no latents"
    st.container(key="cont_caption").caption(
        f"{settings.n} continuation(s) of a {ink.num_points}-point ink · {settings.steps} steps · "
        f"temperature {settings.temperature:g} · seed {settings.seed} · z: {z} · {service.name}")
    return conts


# ----------------------------------------------------------------- linked views
def _toggle_play() -> None:
    st.session_state["playing"] = not st.session_state.get("playing", False)


def linked_views(trace, service: ModelService, style: figures.Style) -> None:
    """Every per-step view of one trace, linked by one time slider (and a play control)."""
    if trace is None:
        return
    T = int(trace.steps)
    if T < 1:
        st.info("This ink has no steps after preprocessing.")
        return
    if st.session_state.get("step", 0) > T - 1:
        st.session_state["step"] = T - 1
    playing = bool(st.session_state.get("playing", False))

    @st.fragment(run_every=PLAY_INTERVAL_S if playing else None)
    def views() -> None:
        if st.session_state.get("playing", False):
            # The position lives outside the widget: a tick can start before the browser has
            # shown the last one, and the slider value it sends back would hold playback still.
            nxt = int(st.session_state.get("play_pos", 0)) + max(1, T // PLAY_TICKS)
            if nxt > T - 1:
                st.session_state["playing"] = False
                st.session_state["step"] = T - 1
                st.rerun()  # the whole app: the fragment stops ticking
            st.session_state["play_pos"] = nxt
            st.session_state["step"] = nxt
        c1, c2 = st.columns([8, 1], vertical_alignment="bottom")
        step = c1.slider("Time step: one cursor for every view below", 0, max(T - 1, 1), key="step",
                         disabled=T < 2)
        paused = not st.session_state.get("playing")
        if c2.button("Play" if paused else "Pause", icon=":material/play_arrow:" if paused else ":material/pause:",
                     key="play", width="stretch"):
            _toggle_play()
            if st.session_state["playing"]:
                start = int(st.session_state.get("step", 0))
                st.session_state["play_pos"] = 0 if start >= T - 1 else start
            st.rerun()
        step = min(int(step), T - 1)
        totals = trace_totals(trace)
        m = st.columns(6)
        m[0].metric("Steps", f"{T}")
        m[1].metric("KL total, nats", f"{totals['kl']:.1f}", help="Sum over steps of KL(q(z_t | x_≤t) ‖ p(z_t | x_<t))")
        m[2].metric("NLL total, nats", f"{totals['nll']:.1f}", help="Sum of the reconstruction −log p(x_t | z_t, h_{t-1})")
        m[3].metric("−ELBO per step", f"{totals['neg_elbo_per_step']:.2f}", help="(KL + NLL) / predicted steps, nats")
        m[4].metric(f"KL at step {step}", f"{float(trace.kl[step]):.2f}")
        m[5].metric(f"NLL at step {step}", f"{float(trace.nll[step]):.2f}")
        a, b = st.columns([5, 6])
        with a:
            chart(figures.kl_ink_figure(trace, step, style=style, title="Where the model is surprised (KL)"),
                  "kl_ink")
        with b:
            chart(figures.step_bars_figure(trace, step, style=style), "step_bars")
        if not service.is_latent:
            st.info("The RNN-GMM baseline has no latent variables: no KL, no latent trajectories. "
                    "Pick the VRNN in the sidebar to see them.")
            return
        a, b = st.columns([5, 6])
        with a:
            chart(figures.latent_pca_figure(trace, step, style=style, title="Latent path: prior vs posterior (PCA)"),
                  "latent_pca")
        with b:
            chart(figures.latent_dims_figure(trace, step, style=style, title="Mean ± σ per latent dimension"),
                  "latent_dims")
        chart(figures.kl_heatmap_figure(trace, step, style=style, title="KL per step and latent unit (active units)"),
              "kl_heatmap")

    views()


# ----------------------------------------------------------------- replay, samples
def replay_tab(ink: Ink, conts: list[Ink] | None, style: figures.Style) -> None:
    st.caption("Press **Replay**: the prefix is written as it was drawn, then every continuation grows at once.")
    chart(figures.replay_figure(ink, conts or [], style=style), "replay")


def _next_sample_seed() -> None:
    st.session_state["sample_seed"] = int(st.session_state.get("sample_seed", 0)) + 1


def samples_tab(service: ModelService, style: figures.Style) -> None:
    c = st.columns([1, 2, 2, 1, 1], vertical_alignment="bottom")
    n = c[0].selectbox("Samples", [2, 4, 6, 8], index=1, key="sample_n")
    steps = c[1].slider("Length (steps)", 50, 800, 300, step=25, key="sample_steps")
    temperature = c[2].slider("Temperature", 0.1, 2.0, 0.7, step=0.05, key="sample_temp")
    seed = c[3].number_input("Seed", 0, 1_000_000, 0, key="sample_seed")
    c[4].button("New", icon=":material/casino:", key="sample_more", on_click=_next_sample_seed, width="stretch")
    samples = safe(lambda: service.samples(int(n), int(steps), float(temperature), int(seed)), "sample")
    if samples is not None:
        chart(figures.samples_figure(samples, style=style, cols=2 if n <= 4 else 3,
                                     title=f"Unconditional samples from {service.name}"), "samples")


# ----------------------------------------------------------------- comparison
def compare_tab(ink: Ink, service: ModelService, data: SessionData, trace_seed: int, style: figures.Style) -> None:
    from .ui import try_bundled

    latent = service if service.is_latent else try_bundled("vrnn")[0]
    baseline = service if not service.is_latent else try_bundled("rnn")[0]
    if latent is None or baseline is None:
        missing = "RNN-GMM baseline" if baseline is None else "VRNN"
        st.info(f"The comparison needs the bundled {missing} (pretrained/{'rnn' if baseline is None else 'vrnn'}).")
        return
    st.markdown(f"**{latent.name}** vs **{baseline.name}** on this ink, in nats per point (higher is better). "
                "The VRNN's ELBO and IWAE are lower bounds on its log-likelihood (IWAE is the tighter one); "
                "the RNN-GMM's log-likelihood is exact.")
    K = st.select_slider("Importance samples K for the IWAE bound", [0, 4, 16, 64, 256], value=16, key="iwae_k")
    res_v = safe(lambda: latent.evaluate(ink, importance_samples=int(K)), f"evaluate {latent.name}")
    res_r = safe(lambda: baseline.evaluate(ink, importance_samples=0), f"evaluate {baseline.name}")
    if res_v is None or res_r is None:
        return
    m = st.columns(3)
    m[0].metric(f"{latent.name}: ELBO", f"{res_v['elbo_per_point']:.3f}")
    if "iwae_per_point" in res_v:
        m[1].metric(f"{latent.name}: IWAE (K={K})", f"{res_v['iwae_per_point']:.3f}")
    m[2].metric(f"{baseline.name}: log-likelihood", f"{res_r['elbo_per_point']:.3f}")
    best_bound = res_v.get("iwae_per_point", res_v["elbo_per_point"])
    gap = best_bound - res_r["elbo_per_point"]
    bound = f"IWAE bound (K={K})" if "iwae_per_point" in res_v else "ELBO"
    if gap >= 0:
        st.success(f"Even its {bound} puts the VRNN {gap:.3f} nats per point above the RNN-GMM on this ink: "
                   "the VRNN explains it better.")
    else:
        st.info(f"The VRNN's {bound} is {-gap:.3f} nats per point below the RNN-GMM's exact log-likelihood. "
                "A bound can only understate the VRNN; more importance samples tighten it.")
    a, b = st.columns(2)
    with a:
        chart(figures.comparison_figure(comparison_rows({latent.name: res_v, baseline.name: res_r}), style=style,
                                        title="Per-point log-likelihood (bounds)"), "compare_bars")
    tv = safe(lambda: latent.trace(ink, seed=trace_seed), f"trace {latent.name}")
    tr = safe(lambda: baseline.trace(ink, seed=trace_seed), f"trace {baseline.name}")
    if tv is not None and tr is not None:
        curves = {f"{latent.name}: KL + NLL (−ELBO)": np.asarray(tv.kl) + np.asarray(tv.nll),
                  f"{baseline.name}: NLL (exact)": np.asarray(tr.nll)}
        with b:
            chart(figures.per_step_comparison_figure(curves, step=st.session_state.get("step"), style=style,
                                                     title="Per step along the ink"), "compare_steps")


# ----------------------------------------------------------------- retraining
def _training_inks(data: SessionData, ink: Ink | None) -> tuple[list[Ink], list[str]]:
    """The inks chosen in the Retrain tab and one-line errors of unreadable files."""
    inks: list[Ink] = []
    errors: list[str] = []
    files = st.session_state.get("train_files") or []
    live = set()
    for f in files:
        live.add(f.file_id)
        if f.file_id not in data.training_uploads:
            data.training_uploads[f.file_id] = parse_upload(f.file_id, f.name, f.getvalue())
        res = data.training_uploads[f.file_id]
        if res.error:
            errors.append(res.error)
        else:
            inks.extend(res.inks)
    for fid in list(data.training_uploads):
        if fid not in live:
            del data.training_uploads[fid]  # memory goes with the file
    if st.session_state.get("train_use_drawings", True):
        inks.extend(data.drawings)
    if ink is not None and st.session_state.get("train_use_current", False):
        inks.append(ink)
    return inks, errors


def _adopt(data: SessionData, job: TrainingJob) -> None:
    """Make a finished job's model selectable (and selected) in the sidebar."""
    if job.model is None or getattr(job, "adopted_as", None):
        return
    name = data.add_model(f"Retrained #{data.job_counter}", ModelService(job.model, f"Retrained #{data.job_counter}"))
    data.models[name].name = name
    job.adopted_as = name
    st.session_state["model_name"] = name


def _start_training(data: SessionData, service: ModelService, inks: list[Ink]) -> None:
    if data.job is not None and data.job.running:
        st.session_state["train_message"] = "This session already trains a model: cancel it or wait."
        return
    data.job_counter += 1
    minutes = float(st.session_state.get("train_minutes", 1.0))
    max_steps = int(st.session_state.get("train_max_steps", 0)) or None
    fine = st.session_state.get("train_from", "fine-tune") == "fine-tune"
    request = TrainingRequest(inks=tuple(inks), minutes=minutes, max_steps=max_steps, fine_tune=fine,
                              seed=int(st.session_state.get("seed", 0)), label=f"Retrained #{data.job_counter}")
    job = TrainingJob(request, base_model=service.model)
    try:
        job.start()
    except TrainingBusy as e:
        st.session_state["train_message"] = one_line(str(e))
        return
    data.job = job
    st.session_state["train_message"] = None


def retrain_tab(data: SessionData, service: ModelService, ink: Ink | None, style: figures.Style) -> None:
    st.markdown("Train on your own handwriting: upload ink files and/or collect drawings (Draw → "
                "**Add to my training set**). Training runs in the background; the bundled model is never "
                "changed, the result becomes a new model in the sidebar and can be downloaded.")
    a, b = st.columns(2, gap="large")
    with a:
        st.file_uploader("Training ink files (any supported format)", accept_multiple_files=True, key="train_files")
        st.checkbox(f"My collected drawings ({len(data.drawings)})", value=True, key="train_use_drawings")
        st.checkbox("The current ink", value=False, key="train_use_current", disabled=ink is None)
    with b:
        st.slider("Time budget (minutes)", 0.25, 10.0, 1.0, step=0.25, key="train_minutes")
        st.number_input("Step limit (0: none)", 0, 100_000, 0, step=50, key="train_max_steps")
        st.radio("Start from", ["fine-tune", "scratch"], key="train_from", horizontal=True,
                 format_func=lambda m: {"fine-tune": f"fine-tune {service.name}",
                                        "scratch": "a small new model"}[m])
    inks, errors = _training_inks(data, ink)
    for e in errors:
        st.error(e)
    busy = data.job is not None and data.job.running
    points = sum(i.num_points for i in inks)
    st.caption(f"Training set: {len(inks)} ink(s), {points} points · trainings running in this app: "
               f"{running_trainings()} of at most {MAX_CONCURRENT_TRAININGS}")
    st.button("Start training", icon=":material/rocket_launch:", key="train_start", type="primary", disabled=busy or not inks,
              on_click=_start_training, args=(data, service, inks))
    if st.session_state.get("train_message"):
        st.warning(st.session_state["train_message"])
    if data.job is not None:
        training_progress(data, style)


def training_progress(data: SessionData, style: figures.Style) -> None:
    """Progress, live curves, cancel, and the result: a fragment that polls while training runs."""
    job = data.job
    polling = not job.done

    @st.fragment(run_every=1.0 if polling else None)
    def progress_view() -> None:
        snap = job.snapshot()
        status = snap["status"]
        if polling and job.done:
            st.rerun()  # finished: rerun the page once so the result becomes selectable
        last = snap["last"]
        text = f"{status} · step {snap['step']} · {snap['elapsed']:.0f} s"
        if last.get("loss") is not None:
            text += f" · loss {last['loss']:.3f} nats/pt"
        st.progress(snap["fraction"], text=text)
        if status == "running":
            st.button("Cancel", icon=":material/cancel:", key="train_cancel", on_click=job.cancel)
        chart(figures.training_curves_figure(snap["history"], style=style, title="Training curves"), "train_curves")
        if last.get("message") and job.done:
            st.caption(" · ".join(line.strip() for line in str(last["message"]).splitlines() if line.strip()))
        if status == "failed":
            st.error(f"Training failed: {snap['error']}")
        elif job.model is not None:
            adopted = getattr(job, "adopted_as", None)
            c1, c2 = st.columns(2)
            if adopted:
                c1.success(f"Selectable in the sidebar as “{adopted}”.")
            else:
                c1.button("Use this model", icon=":material/check_circle:", key="train_adopt", type="primary", on_click=_adopt, args=(data, job))
            c2.download_button("Download weights + config (zip)", icon=":material/download:", data=lambda m=job.model: exports.model_zip(m),
                               file_name=f"vrnn-retrained-{data.job_counter}.zip", mime="application/zip",
                               on_click="ignore", key="train_download")

    progress_view()


# ----------------------------------------------------------------- exports
def export_tab(ink: Ink, conts: list[Ink] | None, trace, service: ModelService, style: figures.Style,
               trace_seed: int) -> None:
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
    builders = {
        "Continuations": lambda: figures.continuations_figure(ink, conts, style=style),
        "Pen replay (animated)": lambda: figures.replay_figure(ink, conts, style=style),
    }
    if trace is not None:
        builders.update({
            "KL along the ink": lambda: figures.kl_ink_figure(trace, style=style),
            "KL and NLL per step": lambda: figures.step_bars_figure(trace, style=style),
            "Latent path (PCA)": lambda: figures.latent_pca_figure(trace, style=style),
            "Latent mean ± σ": lambda: figures.latent_dims_figure(trace, style=style),
            "KL heatmap": lambda: figures.kl_heatmap_figure(trace, style=style),
        })
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    which = a.selectbox("Figure", list(builders), key="export_figure")
    build = builders[which]
    b.download_button("Figure (HTML)", data=lambda: exports.figure_html(build()),
                      file_name=f"{stem}-{exports.safe_stem(which, 'figure')}.html", mime="text/html",
                      on_click="ignore", key="dl_figure_html", width="stretch")
