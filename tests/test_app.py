"""The app without a browser: its pure logic (canvas payloads, caching, jobs, uploads,
exports) and AppTest flows through the upload / session-state seam.

AppTest runs ``app.py`` on two tiny untrained checkpoints (``VRNN_APP_*_MODEL``) so the
flows are fast; the browser tests (tests/browser) use the bundled model.
"""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import vrnn
from vrnn import Ink
from vrnn.app import canvas, exports, figures, jobs, state
from vrnn.app.compute import (
    ContinuationSettings,
    LRUCache,
    ModelService,
    comparison_rows,
    ink_digest,
    trace_totals,
)
from vrnn.app.examples import builtin_examples, character_ink, character_names
from vrnn.app.state import SessionData, parse_upload
from vrnn.formats import ink_to_json_bytes

from _notebook import notebook_bytes  # tests/_notebook.py

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("app-models")
    torch.manual_seed(0)
    vrnn.VRNN(vrnn.VRNNConfig(hidden=24, latent=3, mixtures=2, x_features=16, z_features=16, mlp=32)).save(root / "vrnn")
    vrnn.RNNGMM(vrnn.VRNNConfig(model="rnn", hidden=24, latent=0, mixtures=2, x_features=16, mlp=32)).save(root / "rnn")
    return root


@pytest.fixture
def app_env(tiny_models, monkeypatch):
    monkeypatch.setenv("VRNN_APP_VRNN_MODEL", str(tiny_models / "vrnn"))
    monkeypatch.setenv("VRNN_APP_RNN_MODEL", str(tiny_models / "rnn"))
    return tiny_models


def line_ink(n: int = 30, seed: int = 0) -> Ink:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 100, n)
    return Ink(strokes=[np.column_stack([x[: n // 2], 20 * np.sin(x[: n // 2] / 9) + rng.normal(0, 0.3, n // 2)]),
                        np.column_stack([x[n // 2:], 20 * np.cos(x[n // 2:] / 9)])])


# ----------------------------------------------------------------- canvas payloads
def test_canvas_payload_becomes_an_ink_with_times_and_pressure():
    payload = {"strokes": [[[10, 20, 0.0, 0.5], [12, 22, 0.01, 0.6], [15, 21, 0.02, 0.7]],
                           [[40, 20, 0.5, 0.5], [41, 30, 0.52, 0.5]]], "size": [600, 260], "rev": 2}
    ink = canvas.payload_to_ink(payload)
    assert [s.tolist() for s in ink.strokes] == [[[10, 20], [12, 22], [15, 21]], [[40, 20], [41, 30]]]
    assert ink.times[1].tolist() == [0.5, 0.52]
    assert ink.pressure[0].tolist() == [0.5, 0.6, 0.7] and ink.pressure[1].tolist() == [0.5, 0.5]
    assert ink.meta["canvas_size"] == (600, 260)


@pytest.mark.parametrize("payload", [None, {}, {"strokes": []}, {"strokes": "x"}, {"strokes": [[]]},
                                     {"strokes": [[["a", "b"]], [[None, 1]]]}, {"strokes": [[[float("nan"), 1]]]}])
def test_canvas_payload_that_is_empty_or_malformed_gives_none(payload):
    assert canvas.payload_to_ink(payload) is None


def test_canvas_payload_drops_bad_points_and_keeps_order():
    ink = canvas.payload_to_ink({"strokes": [[[1, 1, 0], ["x", 2, 0], [3, 3, 0.1]]]})
    assert ink.strokes[0].tolist() == [[1, 1], [3, 3]]


def test_canvas_payload_without_times_has_no_times():
    ink = canvas.payload_to_ink({"strokes": [[[1, 1], [2, 2]]]})
    assert ink.times is None and ink.num_points == 2


def test_canvas_payload_is_bounded():
    big = {"strokes": [[[i, i, i / 100, 0.5] for i in range(canvas.MAX_POINTS)], [[1, 1, 0, 0.5]] * 50]}
    assert canvas.payload_to_ink(big).num_points == canvas.MAX_POINTS


def test_canvas_restore_round_trips():
    ink = canvas.payload_to_ink({"strokes": [[[1, 2, 0.0, 0.4], [3, 4, 0.1, 0.6]], [[5, 6, 0.5, 0.5]]]})
    again = canvas.payload_to_ink({"strokes": canvas.ink_to_payload_strokes(ink)})
    assert [s.tolist() for s in again.strokes] == [s.tolist() for s in ink.strokes]
    assert [t.tolist() for t in again.times] == [t.tolist() for t in ink.times]


def test_canvas_component_assets_are_inline_and_complete():
    js, css = canvas._assets()
    assert "export default function" in js and "setStateValue" in js
    for event in ("pointerdown", "pointermove", "pointerup", "pointercancel", "getCoalescedEvents"):
        assert event in js
    assert "touch-action: none" in css
    assert 'data-action="undo"' in canvas.HTML and 'data-action="clear"' in canvas.HTML


# ----------------------------------------------------------------- caching and services
def test_ink_digest_depends_on_points_only():
    a = line_ink()
    b = a.copy()
    b.label = "other"
    assert ink_digest(a) == ink_digest(b)
    c = a.transformed(shift=(1.0, 0.0))
    assert ink_digest(a) != ink_digest(c)
    d = Ink(strokes=[np.concatenate(a.strokes)])  # same points, no pen lift
    assert ink_digest(a) != ink_digest(d)


def test_lru_cache_evicts_oldest_and_computes_once():
    cache = LRUCache(max_entries=2)
    calls = []
    for key in ["a", "b", "a", "c", "b"]:
        cache.get_or_compute(key, lambda k=key: calls.append(k) or k.upper())
    assert calls == ["a", "b", "c", "b"]  # "b" was evicted by "c" ("a" was used more recently)
    assert len(cache) == 2


def test_model_service_caches_per_ink_and_settings(tiny_models):
    service = ModelService(vrnn.load_model(tiny_models / "vrnn", device="cpu"), "tiny")
    ink = line_ink()
    t1 = service.trace(ink, seed=0)
    assert service.trace(ink.copy(), seed=0) is t1
    assert service.trace(ink, seed=1) is not t1
    s = ContinuationSettings(n=2, steps=15, temperature=0.7, seed=3)
    c1 = service.continuations(ink, s)
    assert service.continuations(ink, s) is c1 and len(c1) == 2
    assert service.continuations(ink, ContinuationSettings(n=2, steps=15, temperature=0.7, seed=4)) is not c1
    adapted = service.continuations(ink, ContinuationSettings(n=2, steps=15, temperature=0.7, seed=3, adapt=3))
    assert adapted is not c1 and not np.allclose(adapted[0].points, c1[0].points)
    assert service.continuations(ink, ContinuationSettings(n=2, steps=15, temperature=0.7, seed=3, adapt=3)) is adapted
    totals = trace_totals(t1)
    assert totals["neg_elbo"] == pytest.approx(float(np.sum(t1.kl) + np.sum(t1.nll)), rel=1e-5)


def test_comparison_rows_label_bounds_and_exact_likelihood():
    rows = comparison_rows({"V": {"model": "vrnn", "elbo_per_point": -2.0, "iwae_per_point": -1.9,
                                  "importance_samples": 8},
                            "R": {"model": "rnn", "elbo_per_point": -1.95}})
    assert [(r["model"], r["measure"]) for r in rows] == [("V", "ELBO"), ("V", "IWAE (K=8)"),
                                                            ("R", "exact log-likelihood")]


# ----------------------------------------------------------------- examples, uploads, exports
def test_builtin_examples_are_valid_inks_with_times():
    examples = builtin_examples()
    assert sum(name.startswith("Synthetic") for name in examples) == 3
    for name, ink in examples.items():
        assert ink.num_points >= 10 and ink.times is not None, name
        for t in ink.times:
            assert np.all(np.diff(t) >= 0)
    k = character_ink("k")
    assert len(k.strokes) == 2 and k.label == "k"
    assert set(character_names()) >= {"a", "b", "k"}


def test_parse_upload_reads_a_multi_ink_file():
    inks = vrnn.synthetic_inks(3, seed=2)
    res = parse_upload("id1", "three.json", ink_to_json_bytes(inks))
    assert res.error is None and len(res.inks) == 3
    assert res.inks[1].label == inks[1].label


@pytest.mark.parametrize("name,data", [("x.xml", b"<not xml"), ("x.json", b"{}"), ("x.npz", b"PK\x03\x04junk"),
                                       ("x.bin", bytes(range(256))), ("x.txt", b"")])
def test_parse_upload_bad_files_give_one_line(name, data):
    res = parse_upload("id", name, data)
    assert res.inks == [] and res.error
    assert "\n" not in res.error and "Traceback" not in res.error


def test_parse_upload_says_too_big_and_accepted_formats_in_the_apps_words():
    res = parse_upload("id", "huge.txt", b"0" * 6_000_000)
    assert res.error == ("huge.txt is 6.0 MB: the app reads up to 5 MB for an ink to look at (training files may "
                         "be up to 50 MB in the Retrain tab).")
    res = parse_upload("id", "notes.bin", b"just some words, no ink")
    assert "format=" not in res.error and "InkML" in res.error and "sketch-rnn" in res.error
    assert parse_upload("id", "huge.txt", b"0" * 6_000_000, training=True).error != res.error  # other limits


OMNIGLOT = ROOT / ".." / "shared" / "data" / "omniglot" / "omniglot.npz"


@pytest.mark.skipif(not OMNIGLOT.exists(), reason=f"{OMNIGLOT} is absent (real sketch-rnn data set)")
def test_training_uploads_use_training_limits_for_a_real_data_set():
    data = OMNIGLOT.read_bytes()
    assert "too much ink" in parse_upload("id", "omniglot.npz", data).error  # the ink-to-look-at limits refuse it
    res = parse_upload("id", "omniglot.npz", data, training=True)
    assert res.error is None and len(res.inks) > 1000


def test_ink_labels_say_1_stroke_not_1_strokes():
    from vrnn.app.state import ink_choice_label, plural

    one = Ink(strokes=[np.zeros((3, 2)) + [[0, 0], [1, 1], [2, 0]]], label="a")
    assert ink_choice_label(0, one).endswith("1 stroke, 3 points")
    assert plural(2, "stroke") == "2 strokes" and plural(1, "ink") == "1 ink"


def test_model_card_text_of_an_app_trained_model():
    from types import SimpleNamespace

    from vrnn.app.ui import model_summary

    cfg = SimpleNamespace(rnn="lstm", hidden=96, latent=8, mixtures=8)
    card = {"data": "inks uploaded or drawn in the app", "train_inks": 30, "valid_inks": 4, "steps": 120,
            "trained_in": "VRNN Handwriting Lab app", "fine_tuned_from": "VRNN (bundled)",
            "metrics": {"best_valid_elbo_per_point": 0.13}}
    text = model_summary(SimpleNamespace(model=SimpleNamespace(config=cfg, card=card), is_latent=True))
    assert "trained on 30 inks uploaded or drawn in the app" in text and "inks inks" not in text
    assert "in the app inks" not in text
    assert "not comparable" in text and "its own 4 inks held out" in text
    bundled = {"data": "synthetic", "train_inks": 20000, "metrics": {"best_valid_elbo_per_point": 3.92}}
    text = model_summary(SimpleNamespace(model=SimpleNamespace(config=cfg, card=bundled), is_latent=True))
    assert "trained on 20,000 synthetic inks" in text and "validation ELBO 3.92" in text
    mixed = {"data": "synthetic:0.5 + /d/omniglot.npz:0.3 + omniglot-lines:/d/strokes.zip:0.2", "train_inks": 72563,
             "mixture": [{"source": "synthetic", "weight": 0.45}, {"source": "/d/omniglot.npz", "weight": 0.45},
                         {"source": "omniglot-lines:/d/strokes.zip", "weight": 0.1}]}
    text = model_summary(SimpleNamespace(model=SimpleNamespace(config=cfg, card=mixed), is_latent=True))
    assert "trained on 72,563 inks: synthetic 45% · omniglot.npz 45% · omniglot-lines strokes.zip 10%" in text
    assert "/d/" not in text
    mixed["mixture"][2]["source"] = "omniglot-lines-augmented:/d/strokes.zip"
    text = model_summary(SimpleNamespace(model=SimpleNamespace(config=cfg, card=mixed), is_latent=True))
    assert "omniglot-lines-augmented strokes.zip 10%" in text and "/d/" not in text
    continued = {**bundled, "steps": 14928, "init_from": {"steps": 14500, "path": "pretrained/vrnn"}}
    text = model_summary(SimpleNamespace(model=SimpleNamespace(config=cfg, card=continued), is_latent=True))
    assert "29,428 steps (14,500 + 14,928 continued)" in text
    third = {**bundled, "steps": 9000, "init_from": {"steps": 12500, "init_from": {"steps": 14500}}}
    text = model_summary(SimpleNamespace(model=SimpleNamespace(config=cfg, card=third), is_latent=True))
    assert "36,000 steps (14,500 + 12,500 + 9,000 continued)" in text


def test_bounds_use_fixed_noise_an_elbo_independent_of_k_and_standard_errors(tiny_models):
    from vrnn.app import scores

    service = ModelService(vrnn.load_model(tiny_models / "vrnn", device="cpu"), "tiny")
    ink = line_ink(40)
    a = scores.bounds(service, ink, 4)
    assert a == scores.bounds(service, ink, 4)  # fixed noise: same numbers again
    b = scores.bounds(service, ink, 16)
    assert b["elbo"] == a["elbo"] and b["elbo_se"] == a["elbo_se"]  # the ELBO does not move with K
    assert a["elbo_se"] > 0 and a["iwae_se"] > 0
    assert b["iwae"] >= b["elbo"] - 3 * b["elbo_se"]
    rows = scores.rows("V", b, "R", -1.0, 16)
    assert [r["measure"] for r in rows] == ["ELBO", "IWAE (K=16)", "exact log-likelihood"]
    assert "iwae" not in scores.bounds(service, ink, 0)


def test_session_collects_drawings_once():
    data = SessionData()
    ink = line_ink()
    assert data.add_drawing(ink) and not data.add_drawing(ink.copy())
    assert len(data.drawings) == 1


def test_exports(tiny_models):
    ink = line_ink()
    again = vrnn.read_ink(exports.inks_json([ink]), name="x.json")[0]
    np.testing.assert_array_equal(again.strokes[1], ink.strokes[1])
    assert exports.inks_svg([ink]).lstrip().startswith(("<svg", "<?xml"))
    model = vrnn.load_model(tiny_models / "vrnn", device="cpu")
    blob = exports.model_zip(model)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert sorted(zf.namelist()) == ["model/config.json", "model/model.safetensors"]
    csv = exports.trace_csv(model.trace(ink))
    assert csv.splitlines()[0].startswith("step,x,y")
    html = exports.figure_html(figures.ink_figure([ink]))
    assert "<html>" in html and "plotly" in html.lower()
    assert exports.safe_stem("my file/../x.json") == "x"
    assert exports.safe_stem("Hello, world") == "Hello-world"
    assert exports.safe_stem("Latent mean ± σ") == "Latent-mean"  # no "ink-Latent_mean___σ"


def test_exported_replay_waits_for_its_button():
    ink = line_ink()
    html = exports.figure_html(figures.replay_figure(ink, [ink.transformed(shift=(100.0, 0.0))]))
    page_script = html.split("Plotly.newPlot(")[-1]  # the page's own code, after the plotly.js bundle
    assert "Plotly.animate(" not in page_script
    fig = figures.replay_figure(ink, [])
    assert "Plotly.animate(" in fig.to_html(include_plotlyjs=False, auto_play=True)  # what the default would do


def test_model_zip_unpacks_to_a_loadable_checkpoint(tiny_models, tmp_path):
    model = vrnn.load_model(tiny_models / "vrnn", device="cpu")
    with zipfile.ZipFile(io.BytesIO(exports.model_zip(model))) as zf:
        zf.extractall(tmp_path)
    again = vrnn.load_model(tmp_path / "model", device="cpu")
    for (k, v), (_, w) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(v, w), k


# ----------------------------------------------------------------- background training
def test_split_train_valid():
    inks = [line_ink(seed=i) for i in range(20)]
    for i, ink in enumerate(inks):
        ink.writer = f"writer-{i % 10}"
    train, valid = jobs.split_train_valid(inks)
    assert len(train) + len(valid) == 20 and valid and train
    assert not {id(i) for i in train} & {id(i) for i in valid}
    assert not {i.writer for i in train} & {i.writer for i in valid}  # whole writers held out
    a, b = jobs.split_train_valid(inks[:2])
    assert len(a) == len(b) == 1 and a[0] is not b[0]  # two inks: one each, never the same
    assert jobs.split_train_valid(inks[:1]) == (inks[:1], inks[:1])  # one ink validates on itself


def test_app_trainings_stop_early():
    opts = jobs.train_options(jobs.TrainingRequest(inks=(line_ink(),)))
    assert opts.patience == jobs.EARLY_STOP_PATIENCE > 0


@pytest.mark.slow
def test_training_job_fine_tunes_a_copy_and_respects_the_global_cap(tiny_models):
    base = vrnn.load_model(tiny_models / "vrnn", device="cpu")
    base.trace(line_ink())  # a shared model has served pages before: its caches must not get in the way
    before = {k: v.clone() for k, v in base.state_dict().items()}
    inks = tuple(vrnn.synthetic_inks(4, seed=3))
    job = jobs.TrainingJob(jobs.TrainingRequest(inks=inks, minutes=1.0, max_steps=4, batch_size=4), base_model=base)
    job.start()
    if jobs.MAX_CONCURRENT_TRAININGS == 1:
        other = jobs.TrainingJob(jobs.TrainingRequest(inks=inks, max_steps=2), base_model=base)
        with pytest.raises(jobs.TrainingBusy):
            other.start()
    assert job.join(TIMEOUT)
    snap = job.snapshot()
    assert snap["status"] == "done", snap["error"]
    assert snap["fraction"] == 1.0 and snap["step"] == 4
    assert any(h.get("loss") is not None for h in snap["history"])
    assert job.model is not None and job.model is not base
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())  # shared model untouched
    assert job.model.card["fine_tuned"] is True
    assert jobs.running_trainings() == 0


@pytest.mark.slow
def test_training_job_cancel_and_session_end_stop_the_worker(tiny_models):
    base = vrnn.load_model(tiny_models / "vrnn", device="cpu")
    inks = tuple(vrnn.synthetic_inks(4, seed=4))
    job = jobs.TrainingJob(jobs.TrainingRequest(inks=inks, minutes=5.0, batch_size=4), base_model=base).start()
    job.cancel()
    assert job.join(TIMEOUT)
    assert job.snapshot()["status"] == "cancelled"
    # a session that ends drops its job: the finalizer stops the training thread
    job = jobs.TrainingJob(jobs.TrainingRequest(inks=inks, minutes=5.0, batch_size=4), base_model=base).start()
    thread, stop = job._thread, job.stop_event
    del job
    import gc

    gc.collect()
    assert stop.is_set()
    thread.join(TIMEOUT)
    assert not thread.is_alive() and jobs.running_trainings() == 0


def test_training_job_reports_failures_in_one_line():
    too_short = Ink(strokes=[np.zeros((1, 2))])  # nothing to learn from: fit refuses it
    job = jobs.TrainingJob(jobs.TrainingRequest(inks=(too_short,), max_steps=2), base_model=None).start()
    assert job.join(TIMEOUT)
    snap = job.snapshot()
    assert snap["status"] == "failed" and snap["error"] and "\n" not in snap["error"]
    assert jobs.running_trainings() == 0


# ----------------------------------------------------------------- AppTest flows
def run_app(**state):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def chart_keys(at) -> set[str]:
    return {el.key for el in at.get("plotly_chart")}


def test_app_starts_with_the_canvas_and_no_errors(app_env):
    at = run_app()
    assert not at.exception and not at.error
    assert at.title[0].value.endswith("VRNN Handwriting Lab")
    assert any("Draw" in str(o) for o in at.segmented_control(key="source").options)
    names = at.sidebar.selectbox(key="model_name").options
    assert names == ["VRNN (bundled)", "RNN-GMM baseline (bundled)"]


def test_upload_shows_continuations_and_trace_views(app_env):
    from vrnn.app.ui import INPUT_SOURCES

    at = run_app(source=INPUT_SOURCES[1])
    inks = vrnn.synthetic_inks(2, seed=5)
    at.file_uploader(key="upload").set_value(("two-lines.json", ink_to_json_bytes(inks), "application/json"))
    at.run()
    assert not at.exception and not at.error
    pick = at.selectbox(key="upload_pick")
    assert len(pick.options) == 2 and inks[0].label in pick.options[0]
    assert {"continuations", "trace_views"} <= chart_keys(at)
    assert any(f"continuations of a {inks[0].num_points}-point ink" in c.value and "follows the prefix" in c.value
               for c in at.caption)
    assert [m.label for m in at.metric][-1] == "ELBO, nats per point"
    pick.select_index(1).run()
    assert any(f"of a {inks[1].num_points}-point ink" in c.value for c in at.caption)
    # "More": the next seed, new continuations
    at.button(key="more").click().run()
    assert at.sidebar.number_input(key="seed").value == 1 and not at.exception
    # a fixed length, no cut
    at.sidebar.toggle(key="cont_auto").set_value(False).run()
    at.sidebar.toggle(key="cont_stop").set_value(False).run()
    caption = next(c.value for c in at.caption if "point ink" in c.value)
    assert "· 200 steps ·" in caption and "cut" not in caption and not at.exception
    # adapted to the hand: the caption says so and the continuations are another model's
    at.sidebar.radio(key="cont_adapt").set_value("always").run()
    caption = next(c.value for c in at.caption if "point ink" in c.value)
    assert "adapted to this ink (30 steps)" in caption and not at.exception and not at.error
    at.sidebar.radio(key="cont_adapt").set_value("off").run()
    caption = next(c.value for c in at.caption if "point ink" in c.value)
    assert "adapted" not in caption and not at.exception


def test_adapt_policy_by_ink_length():
    from vrnn.app.compute import ADAPT_MIN_STEPS, adapt_steps
    from vrnn.inference import ADAPT_STEPS

    assert adapt_steps("off", 10_000) == 0 and adapt_steps("always", 3) == ADAPT_STEPS
    assert adapt_steps("long", ADAPT_MIN_STEPS - 1) == 0 and adapt_steps("long", ADAPT_MIN_STEPS) == ADAPT_STEPS
    with pytest.raises(ValueError, match="adapt mode"):
        adapt_steps("sometimes", 200)


def test_by_default_long_inks_are_adapted_to_and_short_ones_are_not(app_env):
    """The default "Adapt to this hand" mode adapts to an ink of ADAPT_MIN_STEPS model steps or more."""
    from vrnn.app.compute import ADAPT_MIN_STEPS
    from vrnn.app.ui import INPUT_SOURCES

    model = vrnn.load_model(app_env / "vrnn", device="cpu")
    long_ink = next(i for i in vrnn.synthetic_inks(6, seed=5) if model.trace(i).steps >= ADAPT_MIN_STEPS)
    short_ink = line_ink(30)
    assert model.trace(short_ink).steps < ADAPT_MIN_STEPS
    at = run_app(source=INPUT_SOURCES[1])
    assert at.sidebar.radio(key="cont_adapt").value == "long"
    for ink, says in ((long_ink, "adapted to this ink (30 steps)"), (short_ink, f"not adapted (under {ADAPT_MIN_STEPS}")):
        at.file_uploader(key="upload").set_value(("one.json", ink_to_json_bytes([ink]), "application/json"))
        at.run()
        caption = next(c.value for c in at.caption if "point ink" in c.value)
        assert says in caption and not at.exception and not at.error, caption


def test_bad_upload_shows_one_line_error_and_no_exception(app_env):
    from vrnn.app.ui import INPUT_SOURCES

    at = run_app(source=INPUT_SOURCES[1])
    at.file_uploader(key="upload").set_value(("broken.xml", b"<StrokeSet><Stroke><Point x='1'", "text/xml"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "broken.xml" in at.error[0].value and "\n" not in at.error[0].value
    assert not any("continuations of a" in c.value for c in at.caption)  # only the placeholder
    at.file_uploader(key="upload").set_value(None).run()
    assert not at.error  # the earlier file's error does not stay on screen


def test_every_tab_renders_for_an_example(app_env):
    from vrnn.app.panels import TAB_LABELS
    from vrnn.app.ui import INPUT_SOURCES

    at = run_app(source=INPUT_SOURCES[2])
    for label in TAB_LABELS:
        at.session_state["main_tab"] = label
        at.run()
        assert not at.exception and not at.error, label
    assert {"samples"} <= chart_keys(run_app(source=INPUT_SOURCES[2], main_tab=TAB_LABELS[2]))


def test_samples_new_seed_logs_no_session_state_warning(app_env, monkeypatch):
    from streamlit.elements.lib import policies

    from vrnn.app.panels import TAB_LABELS
    from vrnn.app.ui import INPUT_SOURCES

    logged = []
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    monkeypatch.setattr(policies._LOGGER, "warning", lambda msg, *a, **k: logged.append(msg % a))
    at = run_app(source=INPUT_SOURCES[2], main_tab=TAB_LABELS[2])
    at.button(key="sample_more").click().run()
    at.button(key="more").click().run()
    assert at.number_input(key="sample_seed").value == 1 and not at.exception
    assert not logged, logged


def test_compare_tab_shows_standard_errors_and_one_sign_convention(app_env):
    from vrnn.app.panels import TAB_LABELS
    from vrnn.app.ui import INPUT_SOURCES

    at = run_app(source=INPUT_SOURCES[2], main_tab=TAB_LABELS[3])
    assert not at.exception and not at.error
    values = {m.label: m.value for m in at.metric}
    elbo = next(v for k, v in values.items() if k.endswith(": ELBO"))
    assert "±" in elbo and not elbo.startswith("−")
    assert "higher is better" in " ".join(md.value for md in at.markdown)
    at.select_slider(key="iwae_k").set_value(64).run()
    assert next(v for k, v in {m.label: m.value for m in at.metric}.items() if k.endswith(": ELBO")) == elbo


def test_baseline_model_explains_it_has_no_latents(app_env):
    from vrnn.app.ui import INPUT_SOURCES

    at = run_app(source=INPUT_SOURCES[2], model_name="RNN-GMM baseline (bundled)")
    assert not at.exception and not at.error
    assert any("no latent variables" in i.value for i in at.info)
    assert "trace_views" in chart_keys(at)


@pytest.mark.slow
def test_retrain_a_few_steps_makes_a_new_model_selected_at_once(app_env):
    from vrnn.app.panels import TAB_LABELS
    from vrnn.app.ui import INPUT_SOURCES

    at = run_app(source=INPUT_SOURCES[2], main_tab=TAB_LABELS[4], train_use_current=True, train_max_steps=3)
    assert not at.exception
    assert any("validation uses the training ink itself" in c.value for c in at.caption)  # one ink
    at.button(key="train_start").click().run()
    data = at.session_state["vrnn_app"]
    assert data.job is not None
    assert data.job.join(TIMEOUT) and data.job.snapshot()["status"] == "done"
    at.run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("Training ") and "keeps the weights of step" in c.value for c in at.caption)
    at.button(key="train_adopt").click().run()
    box = at.sidebar.selectbox(key="model_name")
    assert box.value == "Retrained #1" and "Retrained #1" in box.options  # listed and selected at once
    assert box.options[0] == "VRNN (bundled)"  # still beside the bundled one
    assert at.radio(key="train_from").value == "fine-tune"  # "Start from" keeps its choice
    assert "not comparable" in at.sidebar.caption[0].value
    at.session_state["main_tab"] = TAB_LABELS[0]
    at.run()
    assert not at.exception and "continuations" in chart_keys(at)
    assert threading.active_count() < 50


def test_retrain_keeps_uploaded_training_files_across_tabs_and_models(app_env):
    from vrnn.app.panels import TAB_LABELS
    from vrnn.app.ui import INPUT_SOURCES

    at = run_app(source=INPUT_SOURCES[2], main_tab=TAB_LABELS[4], train_use_drawings=False)
    inks = vrnn.synthetic_inks(6, seed=8)
    at.file_uploader(key="train_files").set_value([("six.json", ink_to_json_bytes(inks), "application/json")])
    at.radio(key="train_from").set_value("scratch")
    at.run()
    assert any("Training set: 6 inks" in c.value and "held out for validation" in c.value for c in at.caption)
    at.session_state["main_tab"] = TAB_LABELS[0]
    at.run()
    at.sidebar.selectbox(key="model_name").select("RNN-GMM baseline (bundled)")
    at.run()
    at.session_state["main_tab"] = TAB_LABELS[4]
    at.run()
    assert not at.exception
    assert any("Training set: 6 inks" in c.value for c in at.caption)  # the file is still there
    assert at.radio(key="train_from").value == "scratch"


# ----------------------------------------------------------------- notebooks
def test_a_xournal_notebook_upload_lists_its_lines():
    result = state.parse_upload("f1", "notes.xopp", notebook_bytes())
    assert result.error is None and len(result.inks) == 6
    labels = [state.ink_choice_label(i, ink) for i, ink in enumerate(result.inks)]
    assert [lab.split(" · ")[1] for lab in labels] == [f"page {p}, line {k}" for p in (1, 2) for k in (1, 2, 3)]
    training = state.parse_upload("f2", "notes.xopp", notebook_bytes(), training=True)
    assert len(training.inks) == 6  # retraining on a notebook trains on its lines


def test_adapt_policy_script_wraps_a_model_as_the_app_adapts(monkeypatch):
    """scripts/adapt_policy.py measures the app's policy: its wrapper adapts exactly where adapt_steps says."""
    import importlib.util
    from types import SimpleNamespace

    from vrnn.app.compute import ADAPT_MIN_STEPS
    from vrnn.inference import ADAPT_STEPS

    spec = importlib.util.spec_from_file_location("adapt_policy", ROOT / "scripts" / "adapt_policy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    seen = []
    fake = SimpleNamespace(preprocess_config=None, trace=lambda ink: SimpleNamespace(steps=ink),
                           continue_ink=lambda ink, adapt=0, **kw: seen.append((ink, adapt, kw)) or ["cont"])
    policy = mod.Policy(fake, "long")
    for length in (ADAPT_MIN_STEPS - 1, ADAPT_MIN_STEPS, 3 * ADAPT_MIN_STEPS):
        assert policy.continue_ink(length, n=1, seed=4) == ["cont"]
    assert [a for _, a, _ in seen] == [0, ADAPT_STEPS, ADAPT_STEPS] and seen[0][2] == {"n": 1, "seed": 4}
    assert (policy.calls, policy.adapted) == (3, 2)
