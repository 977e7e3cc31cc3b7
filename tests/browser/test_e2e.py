"""End to end in headless Chromium: draw words with the mouse (printed "the", cursive
"hello", "bake"), see the continuations and the linked views, play them in the browser,
upload files (good, bad, too big), four sessions drawing at once, memory after 20
interactions, screenshots.

Every page is watched: any console error or warning, any request that leaves the
machine, and (last test) any warning in the server log fails the run. Timings (pen-up
to rendered views, Play's frame rate) and memory are printed (``-s``), never asserted,
except that Play must reach 15 frames/s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from vrnn.app.examples import character_ink

from .conftest import IDLE

pytestmark = pytest.mark.browser

TIMEOUT_MS = 90_000
VIEWPORT = {"width": 1400, "height": 1000}
TALL = {"width": 1500, "height": 2600}  # the app scrolls inside its own container: tall shots see it all
NO_EXCEPTION = "[data-testid='stException']"
MIN_FPS = 15.0

# Records every change of the script state with its time, so a test can tell the rerun
# that follows a pen-up from earlier ones.
OBSERVE_RUNS = """() => {
  if (window.__runs) return;
  window.__runs = [];
  const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => window.__runs.push([performance.now(), app.getAttribute('data-test-script-state')]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
# The views are up when the app is idle, the continuations' caption names the ink the
# canvas holds (every stroke reached Python), and the linked views are drawn.
VIEWS_FOR = """([t, points]) => {
  const last = window.__runs[window.__runs.length - 1];
  const caption = document.querySelector('.st-key-cont_caption');
  const views = document.querySelector('.st-key-trace_views .main-svg');
  return !!last && last[1] === 'notRunning' && last[0] > t && !!caption && !!views
    && caption.innerText.includes(`of a ${points}-point ink`);
}"""
# Painted: two animation frames later (a timer stands in where a background page gets none).
TWO_FRAMES = """new Promise(r => {
  let done = false;
  const finish = () => { if (!done) { done = true; r(performance.now()); } };
  requestAnimationFrame(() => requestAnimationFrame(finish));
  setTimeout(finish, 250);
})"""
POLL_MS = 25  # not "raf" polling: pages of other contexts are in the background, where rAF stalls

# Play instrumentation: the player (vrnn/app/player.js) counts the frames it draws and the
# steps it moves through (window.__vrnnPlayer); every display frame (rAF) also checks that
# the linked views and their cursor overlay are drawn (no blank frame while playing).
WATCH_PLAY = """() => {
  window.__blank = 0; window.__painted = 0; window.__watching = true;
  const check = () => {
    const g = document.querySelector('.st-key-trace_views .js-plotly-plot');
    const ok = g && g.querySelectorAll('.scatterlayer .trace').length > 0 && g.querySelector('.heatmaplayer image')
      && g.querySelector('svg.vrnn-cursors path[d]');
    if (!ok) window.__blank += 1;
    window.__painted += 1;
    if (window.__watching) requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
}"""
PLAYER = "() => { const p = window.__vrnnPlayer; return [performance.now(), p.frames, p.steps, p.step, p.playing]; }"


# ----------------------------------------------------------------- page watching
class Watch:
    """Console warnings / errors and requests that leave the machine, for one browser context."""

    def __init__(self, ctx, base_url: str):
        self.console: list[str] = []
        self.offsite: list[str] = []
        host = urlparse(base_url).hostname
        self._local = {host, "127.0.0.1", "localhost"}
        ctx.on("console", self._on_console)
        ctx.on("request", self._on_request)

    def _on_console(self, msg) -> None:
        if msg.type in ("error", "warning"):
            self.console.append(f"{msg.type}: {msg.text[:300]}")

    def _on_request(self, request) -> None:
        url = urlparse(request.url)
        if url.scheme in ("data", "blob", "about"):
            return
        if url.hostname not in self._local:
            self.offsite.append(request.url)

    def check(self) -> None:
        assert not self.offsite, f"requests that left the machine: {self.offsite[:5]}"
        assert not self.console, f"console warnings / errors: {self.console[:5]}"


def open_app(browser, url: str, viewport=VIEWPORT):
    ctx = browser.new_context(viewport=viewport)
    watch = Watch(ctx, url)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    page.wait_for_selector("canvas", timeout=TIMEOUT_MS)
    page.evaluate(OBSERVE_RUNS)
    page.watch = watch
    return ctx, page


# ----------------------------------------------------------------- inks to draw
def fit_strokes(strokes: list[np.ndarray], box: dict, fill: float = 0.8) -> list[np.ndarray]:
    """Strokes (any units, y down) scaled into the canvas box (page px)."""
    pts = np.concatenate(strokes)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    s = min(box["width"] * fill / max(hi[0] - lo[0], 1e-9), box["height"] * 0.55 / max(hi[1] - lo[1], 1e-9))
    x0, y0 = box["x"] + box["width"] * (1 - fill) / 2, box["y"] + box["height"] * 0.22
    return [np.column_stack([x0 + (st[:, 0] - lo[0]) * s, y0 + (st[:, 1] - lo[1]) * s]) for st in strokes]


def word_strokes(box: dict, word: str = "bake") -> list[np.ndarray]:
    """The hand-made characters of ``word`` laid out left to right inside the canvas box (page px)."""
    height = box["height"] * 0.5
    scale = height / 100.0
    x0, y0 = box["x"] + box["width"] * 0.06, box["y"] + box["height"] * 0.22
    strokes = []
    for k, char in enumerate(word):
        for s in character_ink(char).strokes:
            strokes.append(np.column_stack([x0 + (s[:, 0] + 75 * k) * scale, y0 + s[:, 1] * scale]))
    return strokes


def synthetic_word(text: str, printed: bool) -> list[np.ndarray]:
    """``text`` in the synthetic handwriting: printed (a sans-serif hand) or cursive."""
    from vrnn.synthetic import PRINT_FONTS, SyntheticWriter, generate_line

    style = SyntheticWriter("e2e-print", font=PRINT_FONTS[0]) if printed else SyntheticWriter("e2e-cursive")
    return generate_line(text, style, np.random.default_rng(0)).strokes


def draw_stroke(page, stroke: np.ndarray, every: int = 2) -> float:
    """One pen-down, moves, pen-up with the real mouse; returns the page time of the pen-up."""
    page.mouse.move(float(stroke[0, 0]), float(stroke[0, 1]))
    page.mouse.down()
    for x, y in stroke[1::every]:
        page.mouse.move(float(x), float(y))
    page.mouse.move(float(stroke[-1, 0]), float(stroke[-1, 1]))
    t_up = page.evaluate("performance.now()")
    page.mouse.up()
    return t_up


# One stroke as pointer events dispatched inside the page: the same handlers as a real
# mouse, without one input round trip per point (fast for four sessions at once).
DISPATCH_STROKE = """(canvas, points) => {
  const fire = (type, [x, y]) => canvas.dispatchEvent(new PointerEvent(type, {
    clientX: x, clientY: y, pointerId: 7, pointerType: 'pen', pressure: type === 'pointerup' ? 0 : 0.6,
    isPrimary: true, bubbles: true, cancelable: true, button: 0, buttons: type === 'pointerup' ? 0 : 1}));
  fire('pointerdown', points[0]);
  for (const p of points.slice(1)) fire('pointermove', p);
  const t = performance.now();
  fire('pointerup', points[points.length - 1]);
  return t;
}"""


def dispatch_stroke(page, stroke: np.ndarray) -> float:
    """One pen stroke as dispatched pointer events; returns the page time of the pen-up."""
    # the canvas lives in the component's shadow root: a locator reaches it, querySelector would not
    return page.locator("canvas").first.evaluate(DISPATCH_STROKE, stroke.round(2).tolist())


def canvas_points(page) -> int:
    """Points on the canvas, from its counter ("3 strokes · 243 points")."""
    return int(page.locator(".ink-count").inner_text().split("·")[1].split()[0])


def wait_views(page, t_up: float) -> float:
    """Wait until the views show the canvas's ink after the pen-up at ``t_up``; ms since then."""
    page.bring_to_front()
    page.wait_for_function(VIEWS_FOR, arg=[t_up, canvas_points(page)], timeout=TIMEOUT_MS, polling=POLL_MS)
    return page.evaluate(TWO_FRAMES) - t_up


RUN_SINCE = "(t) => (window.__runs || []).some(r => r[0] > t && r[1] === 'running')"


def wait_idle(page, start_ms: float = 2000) -> None:
    """After an action: wait for the rerun it starts (up to ``start_ms``: on a loaded machine
    the rerun can begin well after the click; an action that reruns nothing just waits
    that long), then for the app to be idle again."""
    since = page.evaluate("performance.now()") - 300  # the action happened just before this call
    try:
        page.wait_for_function(RUN_SINCE, arg=since, timeout=start_ms, polling=POLL_MS)
    except PlaywrightTimeout:
        pass
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)


def canvas_box(page) -> dict:
    return page.locator("canvas").first.bounding_box()


def clear_canvas(page) -> None:
    button = page.get_by_role("button", name="Clear")
    if button.is_enabled():
        button.click()
        wait_idle(page)


def visible(page, key: str) -> bool:
    """The keyed plotly chart is on the page, drawn (plotly's SVG is there) and visible."""
    chart = page.locator(f".st-key-{key} [data-testid='stPlotlyChart'] .main-svg")
    return chart.count() >= 1 and chart.first.is_visible()


def slider_step(page) -> str:
    """The linked views' current time step, from plotly's slider read-out ("time step 12")."""
    return page.locator(".st-key-trace_views text.slider-currentvalue").first.text_content()


def server_rss_mb(proc) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def assert_no_exception(page) -> None:
    assert page.locator(NO_EXCEPTION).count() == 0, page.locator(NO_EXCEPTION).first.inner_text()


def plotly_button(page, key: str, label: str):
    return page.locator(f".st-key-{key} .updatemenu-button").filter(has_text=label).first


def shoot(page, shots_dir, name: str) -> None:
    page.wait_for_timeout(300)
    page.screenshot(path=str(Path(shots_dir) / name), full_page=True)


# ----------------------------------------------------------------- tests
def test_draw_words_latency_and_readable_continuations(browser, app_server, shots_dir):
    """Printed "the", cursive "hello" (dispatched pen strokes) and "bake" with the real mouse;
    pen-up to rendered views is timed for every stroke; screenshots of each."""
    ctx, page = open_app(browser, app_server.url, TALL)
    try:
        times = []
        for word, printed, shot in (("the", True, "app_the.png"), ("hello", False, "app_overview.png")):
            clear_canvas(page)
            strokes = fit_strokes(synthetic_word(word, printed), canvas_box(page))
            for stroke in strokes:
                times.append(wait_views(page, dispatch_stroke(page, stroke[::2] if len(stroke) > 40 else stroke)))
            assert page.locator(".ink-count").inner_text().startswith(f"{len(strokes)} stroke")
            rows = page.locator(".st-key-continuations .js-plotly-plot .scatterlayer .trace").count()
            assert rows >= 8  # four rows, each the prefix's end + its continuation
            assert visible(page, "trace_views")
            assert_no_exception(page)
            shoot(page, shots_dir, shot)
        clear_canvas(page)
        strokes = word_strokes(canvas_box(page))
        for stroke in strokes:
            times.append(wait_views(page, draw_stroke(page, stroke)))
        print(f"\n[e2e] pen-up to rendered views, {len(times)} strokes of 'the', 'hello', 'bake': "
              + ", ".join(f"{t:.0f}" for t in times) + f" ms (median {statistics.median(times):.0f} ms)")
        assert_no_exception(page)
        page.watch.check()
    finally:
        ctx.close()


def test_adapt_to_this_hand_continues_with_an_adapted_copy(browser, app_server, shots_dir):
    """The sidebar's "Adapt to this hand": cursive "hello" drawn with it on is continued by a
    copy of the model fine-tuned on the ink (the caption says so); pen-up to views is timed."""
    ctx, page = open_app(browser, app_server.url, TALL)
    try:
        page.locator(".st-key-cont_adapt").get_by_text("always").click()  # the default adapts to 150+ steps only
        wait_idle(page)
        clear_canvas(page)
        times = []
        for stroke in fit_strokes(synthetic_word("hello", False), canvas_box(page)):
            times.append(wait_views(page, dispatch_stroke(page, stroke[::2] if len(stroke) > 40 else stroke)))
        assert "adapted to this ink (30 steps)" in page.locator(".st-key-cont_caption").inner_text()
        assert page.locator(".st-key-continuations .js-plotly-plot .scatterlayer .trace").count() >= 8
        assert_no_exception(page)
        shoot(page, shots_dir, "app_adapted.png")
        print(f"\n[e2e] adapted: pen-up to rendered views " + ", ".join(f"{t:.0f}" for t in times)
              + f" ms (median {statistics.median(times):.0f} ms)")
        page.watch.check()
    finally:
        ctx.close()


def test_play_runs_in_the_browser_at_15_fps_and_pause_always_pauses(browser, app_server, shots_dir):
    ctx, page = open_app(browser, app_server.url, TALL)
    try:
        page.locator(".st-key-source button").nth(2).click()  # Examples: a long line
        wait_idle(page)
        page.wait_for_selector(".st-key-trace_views .main-svg", timeout=TIMEOUT_MS)
        page.wait_for_function("() => !!document.querySelector('svg.vrnn-cursors path[d]')", timeout=TIMEOUT_MS)
        shoot(page, shots_dir, "app_long.png")
        play = page.locator(".st-key-trace_player button[data-action='play']")
        page.evaluate(WATCH_PLAY)
        runs_before = page.evaluate("window.__runs.length")
        play.click()
        t0, f0, s0, _, playing = page.evaluate(PLAYER)
        assert playing
        page.wait_for_timeout(3000)
        t1, f1, s1, step, _ = page.evaluate(PLAYER)
        fps, sps = (f1 - f0) / ((t1 - t0) / 1000), (s1 - s0) / ((t1 - t0) / 1000)
        blank, painted = page.evaluate("window.__blank"), page.evaluate("window.__painted")
        print(f"\n[e2e] Play: {fps:.1f} frames/s drawn, cursor through {sps:.1f} steps/s (at step {step}); "
              f"{blank} blank of {painted} display frames")
        assert fps >= MIN_FPS and sps >= MIN_FPS
        assert blank == 0
        # every Pause click pauses: the step stays put; every Play click resumes
        for _ in range(6):
            play.click()  # pause
            _, _, _, step, playing = page.evaluate(PLAYER)
            assert not playing and play.inner_text().strip().endswith("Play")
            page.wait_for_timeout(400)
            assert page.evaluate(PLAYER)[3] == step
            play.click()  # play
            page.wait_for_timeout(300)
            assert page.evaluate(PLAYER)[3] > step
        play.click()
        page.evaluate("window.__watching = false")
        assert page.evaluate("window.__runs.length") == runs_before  # no server rerun while playing
        # the slider scrubs without the server too
        page.locator(".st-key-trace_player input[type='range']").fill("40")
        assert page.evaluate(PLAYER)[3] == 40
        assert page.locator(".st-key-trace_player .player-readout").text_content().startswith("step 40:")
        shoot(page, shots_dir, "app_latent.png")
        assert_no_exception(page)
        page.watch.check()
    finally:
        ctx.close()


def test_uploads_good_bad_and_too_big(browser, app_server):
    import vrnn
    from vrnn.formats import ink_to_json_bytes

    ctx, page = open_app(browser, app_server.url)
    try:
        page.locator(".st-key-source button").nth(1).click()
        wait_idle(page)
        # the upload placeholder, not "Write in the box" (waited for: the source switch can take a second rerun)
        page.locator(".st-key-continuations", has_text="Upload an ink file").wait_for(timeout=TIMEOUT_MS)
        lines = vrnn.synthetic_inks(2, seed=11)
        upload = page.locator(".st-key-upload input[type='file']")
        # a bad file first: one line of error in the app's words, no traceback
        upload.set_input_files(files=[{"name": "broken.xml", "mimeType": "text/xml",
                                       "buffer": b"<StrokeSet><Stroke><Point x='1'"}])
        page.wait_for_selector("[data-testid='stAlertContentError']", timeout=TIMEOUT_MS)
        wait_idle(page)
        error = page.locator("[data-testid='stAlertContentError']").first.inner_text()
        assert "broken.xml" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
        # a good file replaces it: the old error is gone
        upload.set_input_files(files=[{"name": "two-lines.json", "mimeType": "application/json",
                                       "buffer": ink_to_json_bytes(lines)}])
        page.wait_for_selector(".st-key-upload_pick", timeout=TIMEOUT_MS)
        wait_idle(page)
        assert page.locator("[data-testid='stAlertContentError']").count() == 0
        assert f"of a {lines[0].num_points}-point ink" in page.locator(".st-key-cont_caption").inner_text()
        page.locator(".st-key-upload_pick [role='combobox']").click()
        page.get_by_role("option").nth(1).click()
        wait_idle(page)
        assert f"of a {lines[1].num_points}-point ink" in page.locator(".st-key-cont_caption").inner_text()
        # a file over the limit: the app says so in its own words, on the page
        upload.set_input_files(files=[{"name": "huge.txt", "mimeType": "text/plain", "buffer": b"0" * 10_500_000}])
        page.wait_for_selector("[data-testid='stAlertContentError']", timeout=TIMEOUT_MS)
        wait_idle(page)
        error = page.locator("[data-testid='stAlertContentError']").first.inner_text()
        assert "huge.txt" in error and "10.5 MB" in error and "5 MB" in error, error
        assert_no_exception(page)
        page.watch.check()
    finally:
        ctx.close()


def test_a_xournal_notebook_lists_its_lines_and_trains(browser, app_server):
    from _notebook import notebook_bytes  # tests/_notebook.py

    notes = {"name": "notes.xopp", "mimeType": "application/x-xopp", "buffer": notebook_bytes()}
    ctx, page = open_app(browser, app_server.url)
    try:
        page.locator(".st-key-source button").nth(1).click()
        wait_idle(page)
        page.locator(".st-key-upload input[type='file']").set_input_files(files=[notes])
        page.wait_for_selector(".st-key-upload_pick", timeout=TIMEOUT_MS)
        wait_idle(page)
        page.locator(".st-key-upload_pick [role='combobox']").click()
        options = page.get_by_role("option").all_inner_texts()
        assert len(options) == 6, options
        assert [o.split(" · ")[1] for o in options] == [f"page {p}, line {k}" for p in (1, 2) for k in (1, 2, 3)]
        page.get_by_role("option").nth(4).click()  # page 2, line 2
        wait_idle(page)
        from vrnn.app.state import parse_upload

        line = parse_upload("x", "notes.xopp", notes["buffer"]).inks[4]
        assert f"of a {line.num_points}-point ink" in page.locator(".st-key-cont_caption").inner_text()
        # retrain on the notebook: its six lines are the training set
        page.get_by_role("tab", name="Retrain").click()
        wait_idle(page)
        page.locator(".st-key-train_files input[type='file']").set_input_files(files=[notes])
        page.wait_for_function("() => document.body.innerText.includes('Training set: 6 inks')", timeout=TIMEOUT_MS)
        wait_idle(page)
        steps = page.locator(".st-key-train_max_steps input")
        steps.fill("20")
        steps.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Start training").click()
        page.get_by_role("button", name="Use this model").wait_for(timeout=3 * TIMEOUT_MS)
        page.get_by_role("button", name="Use this model").click()
        sidebar_has = "(t) => document.querySelector(\"[data-testid='stSidebar']\").innerText.includes(t)"
        page.wait_for_function(sidebar_has, arg="uploaded or drawn in the app", timeout=TIMEOUT_MS)
        wait_idle(page)
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
        assert "trained on 5 inks uploaded or drawn in the app" in sidebar, sidebar  # 6 lines: 5 train, 1 valid
        assert "in the app inks" not in sidebar
        assert_no_exception(page)
        page.watch.check()
    finally:
        ctx.close()


def test_four_sessions_drawing_at_once_all_get_results(browser, app_server):
    sessions = [open_app(browser, app_server.url) for _ in range(4)]
    try:
        pages = [p for _, p in sessions]
        strokes = [word_strokes(canvas_box(p), word) for p, word in zip(pages, ("bake", "beak", "keR", "ab3"))]
        last_up = [0.0] * 4
        started = time.perf_counter()
        for k in range(max(len(s) for s in strokes)):  # round robin: every session's reruns overlap
            for i, page in enumerate(pages):
                if k < len(strokes[i]):
                    last_up[i] = dispatch_stroke(page, strokes[i][k])
        times = [wait_views(page, t) for page, t in zip(pages, last_up)]
        print("\n[e2e] four sessions: last pen-up to views " + ", ".join(f"{t:.0f}" for t in times)
              + f" ms; all done {time.perf_counter() - started:.1f} s after the first stroke")
        for page, s in zip(pages, strokes):
            page.bring_to_front()
            assert page.locator(".ink-count").inner_text().startswith(f"{len(s)} strokes")
            assert visible(page, "continuations") and visible(page, "trace_views")
            assert_no_exception(page)
            page.watch.check()
    finally:
        for ctx, _ in sessions:
            ctx.close()


def test_tabs_presentation_mode_and_memory_after_20_interactions(browser, app_server, shots_dir):
    proc = app_server.proc
    ctx, page = open_app(browser, app_server.url, TALL)
    try:
        rss_start = server_rss_mb(proc)
        interactions = 0
        for stroke in word_strokes(canvas_box(page), "ab"):  # three strokes: Undo below leaves two
            wait_views(page, draw_stroke(page, stroke))
            interactions += 1
        for _ in range(2):
            page.get_by_role("button", name="More").click()
            wait_idle(page)
            interactions += 1
        for label, shot in (("Pen replay", None), ("Samples", "app_samples.png"), ("VRNN vs RNN-GMM", "app_compare.png"),
                            ("Retrain", None), ("Export", None)):
            page.get_by_role("tab", name=label).click()
            wait_idle(page)
            interactions += 1
            assert_no_exception(page)
            if label == "Samples":
                page.get_by_role("button", name="New").click()  # its seed moves: no Session State warning
                wait_idle(page)
            if shot:
                shoot(page, shots_dir, shot)
        # exports are generated on click, in the browser's download
        with page.expect_download(timeout=TIMEOUT_MS) as dl:
            page.get_by_role("button", name="Trace (CSV)").click()
        csv = Path(dl.value.path()).read_text()
        assert csv.startswith("step,x,y,") and len(csv.splitlines()) > 10
        with page.expect_download(timeout=TIMEOUT_MS) as dl:
            page.get_by_role("button", name="Figure (HTML)").click()
        assert dl.value.suggested_filename.endswith("-continuations.html")
        interactions += 2
        page.get_by_role("tab", name="Pen replay").click()
        wait_idle(page)
        drawn = ("() => Array.from(document.querySelectorAll('.st-key-replay .scatterlayer path.js-line'))"
                 ".reduce((n, p) => n + (p.getAttribute('d') || '').length, 0)")
        complete = page.evaluate(drawn)
        plotly_button(page, "replay", "Replay").click()
        page.wait_for_timeout(400)
        assert page.evaluate(drawn) < 0.6 * complete  # it starts from an empty page, at the pen's speed
        page.wait_for_timeout(1800)  # the prefix is being written
        shoot(page, shots_dir, "app_replay.png")
        interactions += 2
        page.get_by_role("tab", name="Surprise").click()
        wait_idle(page)
        page.locator("[data-testid='stSidebar'] .st-key-presentation label").click()
        wait_idle(page)
        interactions += 2
        assert_no_exception(page)
        shoot(page, shots_dir, "app_presentation.png")
        page.locator("[data-testid='stSidebar'] .st-key-presentation label").click()
        wait_idle(page)
        page.get_by_role("button", name="Undo").click()
        wait_idle(page)
        interactions += 2
        while interactions < 20:
            page.get_by_role("button", name="More").click()
            wait_idle(page)
            interactions += 1
        assert_no_exception(page)
        page.watch.check()
        print(f"\n[e2e] app server RSS: {rss_start:.0f} MB at the start of this test, "
              f"{server_rss_mb(proc):.0f} MB after {interactions} more interactions")
        print(f"[e2e] screenshots in {shots_dir}")
    finally:
        ctx.close()


# Every pair of texts in the linked views (headings, captions, axis titles, tick labels,
# colorbar titles) whose boxes overlap by more than a pixel.
TEXT_OVERLAPS = """() => {
  const root = document.querySelector('.st-key-trace_views .js-plotly-plot');
  const sel = '.annotation-text-g, .g-xtitle text, .g-ytitle text, .xtick text, .ytick text, .cbtitle text, .legendtext';
  const boxes = Array.from(root.querySelectorAll(sel)).map(el => [(el.textContent || '').slice(0, 40),
    el.getBoundingClientRect()]).filter(b => b[1].width > 0);
  const out = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [na, a] = boxes[i], [nb, b] = boxes[j];
    if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) out.push(`${na} X ${nb}`);
  }
  const plot = root.getBoundingClientRect();
  const outside = boxes.filter(([, r]) => r.left < plot.left - 1 || r.right > plot.right + 1)
    .map(([n, r]) => `${n} [${Math.round(r.left - plot.left)}, ${Math.round(r.right - plot.left)}] of ${Math.round(plot.width)}`);
  return {overlaps: out, outside: outside, width: plot.width};
}"""


def test_a_projector_width_in_presentation_mode_gets_readable_linked_views(browser, app_server, shots_dir):
    # 1024 px wide with the sidebar open leaves ~600 px: the views stack one per row
    ctx, page = open_app(browser, app_server.url, {"width": 1024, "height": 2400})
    try:
        # the width probe answers after the first run: wait for the stacked page (the canvas
        # takes the whole column) before drawing
        deadline = time.time() + TIMEOUT_MS / 1000
        while (canvas_box(page) or {"width": 0})["width"] < 400:  # None while the canvas remounts
            assert time.time() < deadline, "the page never stacked at 1024 px"
            page.wait_for_timeout(100)
        wait_idle(page)
        for stroke in word_strokes(canvas_box(page), "ab"):
            wait_views(page, draw_stroke(page, stroke))
        page.locator("[data-testid='stSidebar'] .st-key-presentation label").click()
        wait_idle(page)
        page.wait_for_timeout(500)
        assert_no_exception(page)
        for _ in range(20):  # settled: plotly may still be laying out the last rerun's figure
            found = page.evaluate(TEXT_OVERLAPS)
            if found["width"] < 800 and not found["overlaps"] and not found["outside"]:
                break
            page.wait_for_timeout(250)
        assert found["width"] < 800  # the narrow page the test is about
        assert not found["overlaps"], found["overlaps"][:6]
        assert not found["outside"], found["outside"][:6]
        shoot(page, shots_dir, "app_projector.png")
        # widen the window: the page goes back to two columns and the drawing is still there
        count = page.locator(".ink-count").inner_text()
        page.set_viewport_size({"width": 1500, "height": 2400})
        page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stColumn\"]').length >= 2",
                               timeout=TIMEOUT_MS)
        wait_idle(page)
        assert page.locator(".ink-count").inner_text() == count and "2 strokes" in count
        assert page.evaluate(TEXT_OVERLAPS)["width"] > 800
        page.watch.check()
    finally:
        ctx.close()


def test_no_script_run_failed_and_no_warning_on_the_server(app_server):
    """Last in this file: every run of every session above ended without an uncaught
    exception, and the server logged no warning (e.g. Session State misuse)."""
    errors = app_server.uncaught_errors()
    assert not errors, errors[0]
    warnings = app_server.warnings()
    assert not warnings, "\n".join(warnings[:10])
