"""End to end in headless Chromium: draw a word with the mouse, see the continuations and
the KL views, scrub the time slider, upload files (good and bad), four sessions drawing
at once, memory after 20 interactions, screenshots.

Timings and memory are printed (run with ``-s`` to see them), never asserted.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from vrnn.app.examples import character_ink

from .conftest import IDLE

pytestmark = pytest.mark.browser

TIMEOUT_MS = 90_000
VIEWPORT = {"width": 1400, "height": 1000}
TALL = {"width": 1500, "height": 2300}  # the app scrolls inside its own container: tall shots see it all
NO_EXCEPTION = "[data-testid='stException']"

# Records every change of the script state with its time, so a test can tell the rerun
# that follows a pen-up from earlier ones.
OBSERVE_RUNS = """() => {
  if (window.__runs) return;
  window.__runs = [];
  const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => window.__runs.push([performance.now(), app.getAttribute('data-test-script-state')]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
# The views are up when the app is idle and the continuations' caption names the ink
# the canvas holds (every stroke reached Python), whichever rerun got it there.
VIEWS_FOR = """([t, points]) => {
  const last = window.__runs[window.__runs.length - 1];
  const caption = document.querySelector('.st-key-cont_caption');
  return !!last && last[1] === 'notRunning' && last[0] > t && !!caption
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


# ----------------------------------------------------------------- helpers
def open_app(browser, url: str, viewport=VIEWPORT):
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    page.wait_for_selector("canvas", timeout=TIMEOUT_MS)
    page.evaluate(OBSERVE_RUNS)
    return ctx, page


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


def draw_stroke(page, stroke: np.ndarray) -> float:
    """One pen-down, moves, pen-up with the real mouse; returns the page time of the pen-up."""
    page.mouse.move(float(stroke[0, 0]), float(stroke[0, 1]))
    page.mouse.down()
    for x, y in stroke[1::2]:
        page.mouse.move(float(x), float(y))
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


def wait_idle(page) -> None:
    page.wait_for_timeout(150)
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)


def canvas_box(page) -> dict:
    return page.locator("canvas").first.bounding_box()


def visible(page, key: str) -> bool:
    """The keyed plotly chart is on the page, drawn (plotly's SVG is there) and visible."""
    chart = page.locator(f".st-key-{key} [data-testid='stPlotlyChart'] .main-svg")
    return chart.count() >= 1 and chart.first.is_visible()


def slider_value(page) -> int:
    return int(page.locator(".st-key-step [data-testid='stSliderThumbValue']").inner_text())


def server_rss_mb(proc) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def assert_no_exception(page) -> None:
    assert page.locator(NO_EXCEPTION).count() == 0, page.locator(NO_EXCEPTION).first.inner_text()


# ----------------------------------------------------------------- tests
def test_draw_a_word_then_scrub_and_upload(browser, app_server, shots_dir):
    ctx, page = open_app(browser, app_server.url, TALL)
    try:
        strokes = word_strokes(canvas_box(page))
        times = []
        for stroke in strokes:
            t_up = draw_stroke(page, stroke)
            times.append(wait_views(page, t_up))
        print(f"\n[e2e] pen-up to views, {len(times)} strokes of 'bake': "
              + ", ".join(f"{t:.0f}" for t in times) + f" ms (median {statistics.median(times):.0f} ms)")
        assert page.locator(".ink-count").inner_text().startswith(f"{len(strokes)} strokes")
        for key in ("continuations", "kl_ink", "step_bars"):
            assert visible(page, key), key
        assert page.locator(".st-key-continuations .js-plotly-plot .scatterlayer .trace").count() >= 2
        assert_no_exception(page)
        page.screenshot(path=str(Path(shots_dir) / "app_overview.png"))

        # scrub the linked time slider: keyboard to the end, then drag the thumb back
        slider = page.locator(".st-key-step input[type='range']")
        last = int(slider.get_attribute("max"))
        slider.focus()
        page.keyboard.press("End")
        wait_idle(page)
        assert slider_value(page) == last
        assert page.get_by_text(f"KL at step {last}").count() == 1
        thumb = page.locator(".st-key-step [data-testid='stSliderThumbValue']").locator("..").bounding_box()
        track = page.locator(".st-key-step [data-testid='stSlider']").bounding_box()
        page.mouse.move(thumb["x"] + thumb["width"] / 2, thumb["y"] + thumb["height"] / 2)
        page.mouse.down()
        page.mouse.move(track["x"] + track["width"] * 0.4, thumb["y"] + thumb["height"] / 2, steps=8)
        page.mouse.up()
        wait_idle(page)
        middle = slider_value(page)
        assert 0 < middle < last
        assert page.get_by_text(f"KL at step {middle}").count() == 1
        assert_no_exception(page)
        page.screenshot(path=str(Path(shots_dir) / "app_scrubbed.png"))

        # undo the last stroke: the views follow
        page.get_by_role("button", name="Undo").click()
        wait_idle(page)
        assert page.locator(".ink-count").inner_text().startswith(f"{len(strokes) - 1} strokes")

        # another input source and back: the drawing is still there, on the canvas and in the views
        points = canvas_points(page)
        page.locator(".st-key-source button").nth(2).click()
        wait_idle(page)
        page.locator(".st-key-source button").nth(0).click()
        wait_idle(page)
        assert canvas_points(page) == points
        assert f"of a {points}-point ink" in page.locator(".st-key-cont_caption").inner_text()

        # upload a two-line JSON file, pick the second line
        import vrnn
        from vrnn.formats import ink_to_json_bytes

        page.locator(".st-key-source button").nth(1).click()
        wait_idle(page)
        lines = vrnn.synthetic_inks(2, seed=11)
        upload = page.locator(".st-key-upload input[type='file']")
        upload.set_input_files(files=[{"name": "two-lines.json", "mimeType": "application/json",
                                       "buffer": ink_to_json_bytes(lines)}])
        page.wait_for_selector(".st-key-upload_pick", timeout=TIMEOUT_MS)
        wait_idle(page)
        assert f"of a {lines[0].num_points}-point ink" in page.locator(".st-key-cont_caption").inner_text()
        page.locator(".st-key-upload_pick [role='combobox']").click()
        page.get_by_role("option").nth(1).click()
        wait_idle(page)
        assert f"of a {lines[1].num_points}-point ink" in page.locator(".st-key-cont_caption").inner_text()
        assert visible(page, "continuations") and visible(page, "kl_ink")
        assert_no_exception(page)

        # a bad file: one line of error, no traceback, no exception element
        upload.set_input_files(files=[{"name": "broken.xml", "mimeType": "text/xml",
                                       "buffer": b"<StrokeSet><Stroke><Point x='1'"}])
        page.wait_for_selector("[data-testid='stAlertContentError']", timeout=TIMEOUT_MS)
        wait_idle(page)
        error = page.locator("[data-testid='stAlertContentError']").first.inner_text()
        assert "broken.xml" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
        assert_no_exception(page)
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
        for i, (page, s) in enumerate(zip(pages, strokes)):
            page.bring_to_front()
            assert page.locator(".ink-count").inner_text().startswith(f"{len(s)} strokes")
            assert visible(page, "continuations") and visible(page, "kl_ink"), (
                i, page.locator(".st-key-continuations").count(), page.locator(".st-key-kl_ink").count())
            assert_no_exception(page)
    finally:
        for ctx, _ in sessions:
            ctx.close()


def test_tabs_presentation_mode_and_memory_after_20_interactions(browser, app_server, shots_dir):
    proc = app_server.proc
    ctx, page = open_app(browser, app_server.url, TALL)
    try:
        rss_start = server_rss_mb(proc)
        interactions = 0
        for stroke in word_strokes(canvas_box(page), "ab"):
            wait_views(page, draw_stroke(page, stroke))
            interactions += 1
        for _ in range(3):
            page.get_by_role("button", name="More").click()
            wait_idle(page)
            interactions += 1
        for label, shot in (("Pen replay", None), ("Samples", "app_samples.png"), ("VRNN vs RNN-GMM", "app_compare.png"),
                            ("Retrain", None), ("Export", None)):
            page.get_by_role("tab", name=label).click()
            wait_idle(page)
            interactions += 1
            assert_no_exception(page)
            if shot:
                page.screenshot(path=str(Path(shots_dir) / shot))
        # exports are generated on click, in the browser's download
        with page.expect_download(timeout=TIMEOUT_MS) as dl:
            page.get_by_role("button", name="Trace (CSV)").click()
        csv = Path(dl.value.path()).read_text()
        assert csv.startswith("step,x,y,") and len(csv.splitlines()) > 10
        with page.expect_download(timeout=TIMEOUT_MS) as dl:
            page.get_by_role("button", name="Ink + continuations (SVG)").click()
        assert "<svg" in Path(dl.value.path()).read_text()
        interactions += 2
        page.get_by_role("tab", name="Pen replay").click()
        wait_idle(page)
        page.locator(".st-key-replay .updatemenu-button").first.click()  # plotly's ▶ Replay
        page.wait_for_timeout(1800)  # the prefix is written, the continuations are growing
        page.screenshot(path=str(Path(shots_dir) / "app_replay.png"))
        interactions += 2
        page.get_by_role("tab", name="Surprise").click()
        wait_idle(page)
        page.locator("[data-testid='stSidebar'] .st-key-presentation label").click()
        wait_idle(page)
        interactions += 2
        assert_no_exception(page)
        page.screenshot(path=str(Path(shots_dir) / "app_presentation.png"))
        page.get_by_role("button", name="Undo").click()
        wait_idle(page)
        interactions += 1
        while interactions < 20:
            page.get_by_role("button", name="More").click()
            wait_idle(page)
            interactions += 1
        assert_no_exception(page)
        print(f"\n[e2e] app server RSS: {rss_start:.0f} MB at the start of this test, "
              f"{server_rss_mb(proc):.0f} MB after {interactions} more interactions")
        print(f"[e2e] screenshots in {shots_dir}")
    finally:
        ctx.close()


def test_no_script_run_failed_on_the_server(app_server):
    """Last in this file: every run of every session above ended without an uncaught exception."""
    errors = app_server.uncaught_errors()
    assert not errors, errors[0]
