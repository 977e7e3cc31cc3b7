// Pen canvas for the VRNN Handwriting Lab (Streamlit custom components v2, no build step).
//
// Pointer events give one code path for mouse, pen and touch. Every point keeps its
// position (CSS px, y down), time (s since the first pen-down of the drawing) and
// pressure. The strokes go to Python as the state value "ink" on every pen-up, undo
// and clear. Streamlit calls this function again on every rerun; the drawing lives on
// the root element so it survives those calls, and is restored from `data.strokes`
// when the component is mounted afresh.
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".ink-root");
  if (!root) return;
  const opts = Object.assign({ height: 260, line_width: 2.6, strokes: null, hint: "" }, data || {});

  let app = root.__inkApp;
  if (!app) {
    app = createApp(root);
    root.__inkApp = app;
    if (Array.isArray(opts.strokes) && opts.strokes.length) app.load(opts.strokes);
  }
  app.send = setStateValue; // the latest setter, in case Streamlit hands out a new one
  app.configure(opts);
}

function createApp(root) {
  const canvas = root.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const hint = root.querySelector(".ink-hint");
  const counter = root.querySelector(".ink-count");
  const undoBtn = root.querySelector("[data-action=undo]");
  const clearBtn = root.querySelector("[data-action=clear]");
  const app = {
    strokes: [], // each: array of [x, y, t, p]
    current: null,
    t0: null,
    rev: 0,
    lineWidth: 2.6,
    height: 260,
    send: null,
    color: "#1f2937",
  };

  function cssSize() {
    return { w: canvas.clientWidth || root.clientWidth || 600, h: app.height };
  }

  function resize() {
    const { w, h } = cssSize();
    const dpr = window.devicePixelRatio || 1;
    canvas.style.height = h + "px";
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    app.color = getComputedStyle(root).getPropertyValue("--ink-color").trim() || "#1f2937";
    redraw();
  }

  function guides() {
    const { w, h } = cssSize();
    ctx.save();
    ctx.strokeStyle = "rgba(100, 116, 139, 0.18)";
    ctx.lineWidth = 1;
    ctx.setLineDash([6, 6]);
    for (const f of [0.38, 0.7]) {
      ctx.beginPath();
      ctx.moveTo(16, Math.round(h * f) + 0.5);
      ctx.lineTo(w - 16, Math.round(h * f) + 0.5);
      ctx.stroke();
    }
    ctx.restore();
  }

  function width(p) {
    // Pressure only modulates the line for real pens; a mouse reports 0.5 while pressed.
    return app.lineWidth * (0.55 + 0.9 * (p == null ? 0.5 : p));
  }

  // Smooth rendering: quadratic curves through the midpoints of consecutive points.
  function drawStroke(s, from) {
    ctx.strokeStyle = app.color;
    ctx.fillStyle = app.color;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    if (s.length === 1) {
      ctx.beginPath();
      ctx.arc(s[0][0], s[0][1], width(s[0][3]) / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    const start = Math.max(1, from || 1);
    for (let i = start; i < s.length; i++) {
      const a = s[i - 2] || s[i - 1];
      const b = s[i - 1];
      const c = s[i];
      const m0 = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
      const m1 = [(b[0] + c[0]) / 2, (b[1] + c[1]) / 2];
      ctx.lineWidth = width(c[3]);
      ctx.beginPath();
      ctx.moveTo(i === 1 ? b[0] : m0[0], i === 1 ? b[1] : m0[1]);
      ctx.quadraticCurveTo(b[0], b[1], i === s.length - 1 ? c[0] : m1[0], i === s.length - 1 ? c[1] : m1[1]);
      ctx.stroke();
    }
  }

  function redraw() {
    const { w, h } = cssSize();
    ctx.clearRect(0, 0, w, h);
    guides();
    for (const s of app.strokes) drawStroke(s);
    if (app.current) drawStroke(app.current);
    const n = app.strokes.length;
    hint.style.display = n || app.current ? "none" : "flex";
    counter.textContent = n ? `${n} stroke${n > 1 ? "s" : ""} · ${app.strokes.reduce((k, s) => k + s.length, 0)} points` : "";
    undoBtn.disabled = n === 0;
    clearBtn.disabled = n === 0;
  }

  function emit() {
    app.rev += 1;
    const { w, h } = cssSize();
    if (app.send) {
      app.send("ink", { strokes: app.strokes, size: [w, h], rev: app.rev });
    }
    root.dataset.rev = String(app.rev);
  }

  function point(e) {
    const r = canvas.getBoundingClientRect();
    const now = e.timeStamp / 1000;
    if (app.t0 === null) app.t0 = now;
    const p = e.pointerType === "mouse" ? 0.5 : e.pressure || 0.5;
    return [
      Math.round((e.clientX - r.left) * 100) / 100,
      Math.round((e.clientY - r.top) * 100) / 100,
      Math.round((now - app.t0) * 10000) / 10000,
      Math.round(p * 1000) / 1000,
    ];
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== undefined && e.button > 0) return;
    e.preventDefault();
    try {
      canvas.setPointerCapture(e.pointerId); // keep the stroke when the pen leaves the canvas
    } catch (err) {
      // synthetic events (tests, assistive tools) may carry an inactive pointer id
    }
    app.current = [point(e)];
    app.pointerId = e.pointerId;
    redraw();
  });

  canvas.addEventListener("pointermove", (e) => {
    if (!app.current || e.pointerId !== app.pointerId) return;
    e.preventDefault();
    // Coalesced events keep the full sampling rate of pens (and fast mouse moves).
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    const before = app.current.length;
    for (const ev of events.length ? events : [e]) {
      const p = point(ev);
      const last = app.current[app.current.length - 1];
      if (p[0] !== last[0] || p[1] !== last[1]) app.current.push(p);
    }
    if (app.current.length > before) drawStroke(app.current, Math.max(1, before - 1));
  });

  function finish(e) {
    if (!app.current || e.pointerId !== app.pointerId) return;
    const p = point(e);
    const last = app.current[app.current.length - 1];
    if (p[0] !== last[0] || p[1] !== last[1]) app.current.push(p);
    app.strokes.push(app.current);
    app.current = null;
    redraw();
    emit();
  }
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);

  undoBtn.addEventListener("click", () => {
    if (!app.strokes.length) return;
    app.strokes.pop();
    if (!app.strokes.length) app.t0 = null;
    redraw();
    emit();
  });
  clearBtn.addEventListener("click", () => {
    app.strokes = [];
    app.current = null;
    app.t0 = null;
    redraw();
    emit();
  });
  app.load = (strokes) => {
    app.strokes = strokes.filter((s) => Array.isArray(s) && s.length).map((s) => s.map((p) => p.slice(0, 4)));
    const last = app.strokes.length ? app.strokes[app.strokes.length - 1] : null;
    app.t0 = last ? performance.now() / 1000 - last[last.length - 1][2] - 1 : null;
    redraw();
  };
  app.configure = (o) => {
    const changed = o.height !== app.height || o.line_width !== app.lineWidth;
    app.height = o.height;
    app.lineWidth = o.line_width;
    if (o.hint) hint.textContent = o.hint;
    if (changed) resize();
  };

  new ResizeObserver(() => resize()).observe(root);
  resize();
  return app;
}
