// Time player for the linked views (Streamlit custom components v2, no build step).
//
// The linked views are one plotly chart without cursors. This component draws the
// cursors itself, in an SVG overlay on top of that chart, from per-step positions
// computed in Python (`data.cursors`, in data units of each cursor's axes, mapped to
// pixels with the chart's own axes every frame, so zoom and resize just work). Play,
// Pause and the slider run here, in the browser: nothing goes back to the server, and
// a frame costs a few DOM writes (no plotly redraw), so playback keeps the display's pace.
//
// window.__vrnnPlayer exposes { step, playing, frames, steps } for tests.
export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".player-root");
  if (!root) return;
  let app = root.__player;
  if (!app) {
    app = createPlayer(root);
    root.__player = app;
  }
  app.load(data || {});
}

const SVG = "http://www.w3.org/2000/svg";

function createPlayer(root) {
  const playBtn = root.querySelector("[data-action=play]");
  const slider = root.querySelector("input[type=range]");
  const readout = root.querySelector(".player-readout");
  const speedSel = root.querySelector("select");
  const app = { spec: null, step: 0, playing: false, t0: 0, s0: 0, frames: 0, steps: 0, overlay: null, key: null };
  window.__vrnnPlayer = app;

  function chart() {
    const sel = app.spec && app.spec.chart;
    return sel ? document.querySelector(sel + " .js-plotly-plot") : null;
  }

  function ensureOverlay(gd) {
    const holder = gd.querySelector(".svg-container");
    if (!holder) return null;
    if (!app.overlay || !holder.contains(app.overlay)) {
      app.overlay = document.createElementNS(SVG, "svg");
      app.overlay.setAttribute("class", "vrnn-cursors");
      app.overlay.style.cssText = "position:absolute;left:0;top:0;pointer-events:none;overflow:visible;z-index:5";
      holder.appendChild(app.overlay);
      app.shapes = null;
    }
    const fl = gd._fullLayout;
    app.overlay.setAttribute("width", fl.width);
    app.overlay.setAttribute("height", fl.height);
    if (!app.shapes) {
      app.shapes = (app.spec.cursors || []).map((c) => {
        const el = document.createElementNS(SVG, c.mode === "markers" ? "circle" : "path");
        if (c.mode === "markers") {
          el.setAttribute("r", c.size / 2);
          el.setAttribute("fill", c.fill || "none");
          el.setAttribute("stroke", c.color);
          el.setAttribute("stroke-width", c.width);
        } else {
          el.setAttribute("fill", "none");
          el.setAttribute("stroke", c.color);
          el.setAttribute("stroke-width", c.width);
        }
        app.overlay.appendChild(el);
        return el;
      });
    }
    return fl;
  }

  function px(ax, v) {
    return ax._offset + ax.l2p(v);
  }

  function draw() {
    const gd = chart();
    if (!gd || !gd._fullLayout || !app.spec) return false;
    const fl = ensureOverlay(gd);
    if (!fl) return false;
    const s = app.step;
    (app.spec.cursors || []).forEach((c, i) => {
      const xa = fl[c.xaxis], ya = fl[c.yaxis], el = app.shapes[i];
      if (!xa || !ya || !xa.l2p || !ya.l2p) return;
      if (c.mode === "vline") {
        const x = px(xa, s).toFixed(1);
        el.setAttribute("d", `M${x},${ya._offset}L${x},${ya._offset + ya._length}`);
        return;
      }
      const xs = c.x[s], ys = c.y[s];
      if (!xs || !xs.length) { el.setAttribute("visibility", "hidden"); return; }
      el.setAttribute("visibility", "visible");
      if (c.mode === "markers") {
        el.setAttribute("cx", px(xa, xs[0]));
        el.setAttribute("cy", px(ya, ys[0]));
      } else {
        let d = "";
        for (let k = 0; k < xs.length; k++) d += (k ? "L" : "M") + px(xa, xs[k]).toFixed(1) + "," + px(ya, ys[k]).toFixed(1);
        el.setAttribute("d", d);
      }
    });
    readout.textContent = (app.spec.readout || [])[s] || `step ${s}`;
    slider.value = String(s);
    app.frames += 1;
    return true;
  }

  function setStep(s) {
    const last = Math.max((app.spec ? app.spec.steps : 1) - 1, 0);
    const next = Math.max(0, Math.min(last, Math.round(s)));
    if (next !== app.step) app.steps += 1;
    app.step = next;
    draw();
  }

  function setPlaying(on) {
    app.playing = on;
    playBtn.textContent = on ? "❚❚ Pause" : "▶ Play";
    playBtn.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) {
      const last = app.spec.steps - 1;
      if (app.step >= last) app.step = 0;
      app.t0 = performance.now();
      app.s0 = app.step;
      requestAnimationFrame(tick);
    }
  }

  function tick(now) {
    if (!app.playing || !app.spec) return;
    const rate = app.spec.steps_per_s * Number(speedSel.value || 1);
    const s = app.s0 + ((now - app.t0) / 1000) * rate;
    const last = app.spec.steps - 1;
    if (s >= last) {
      setStep(last);
      setPlaying(false);
      return;
    }
    setStep(Math.floor(s));
    requestAnimationFrame(tick);
  }

  playBtn.addEventListener("click", () => setPlaying(!app.playing));
  slider.addEventListener("input", () => {
    if (app.playing) setPlaying(false);
    setStep(Number(slider.value));
  });
  speedSel.addEventListener("change", () => {
    if (app.playing) { app.t0 = performance.now(); app.s0 = app.step; }
  });

  // The chart re-renders (new ink, resize, zoom): redraw the cursors when it does.
  let pending = false;
  const observer = new MutationObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; if (!app.playing) draw(); });
  });

  app.load = (spec) => {
    const key = spec.key || null;
    const changed = key !== app.key;
    app.spec = spec;
    app.key = key;
    slider.max = String(Math.max((spec.steps || 1) - 1, 0));
    if (changed) {
      if (app.playing) setPlaying(false);
      app.step = 0;
      app.shapes = null;
      if (app.overlay) app.overlay.replaceChildren();
    }
    attach(0);
  };

  // The chart mounts after this component (and is replaced on some reruns): keep looking
  // for it, then watch it for re-renders.
  function attach(tries) {
    const gd = chart();
    if (gd && gd._fullLayout && gd.querySelector(".svg-container")) {
      if (app.watched !== gd) {
        observer.disconnect();
        observer.observe(gd, { childList: true, subtree: true });
        app.watched = gd;
      }
      draw();
      return;
    }
    if (tries < 300) setTimeout(() => attach(tries + 1), 100);
  }
  return app;
}
