"""The Streamlit app's logic, importable and testable without Streamlit.

- :mod:`vrnn.app.figures`: pure plotly figure builders (ink, continuations, pen
  replay, KL / NLL per step, latent dynamics, samples, training curves).
- :mod:`vrnn.app.canvas`: the pen canvas custom component (components v2, inline
  HTML / CSS / JS) and the conversion of its strokes to an :class:`~vrnn.Ink`.
- :mod:`vrnn.app.examples`: built-in example inks.
- :mod:`vrnn.app.compute`: cached inference on a shared, read-only model.
- :mod:`vrnn.app.jobs`: background retraining with progress, cancel and a global cap.
- :mod:`vrnn.app.exports`: ink JSON / SVG, figure HTML, trace CSV, model zip.
- :mod:`vrnn.app.state`: per-session data (uploads, collected drawings, retrained models).
- :mod:`vrnn.app.ui` and :mod:`vrnn.app.panels`: the Streamlit page itself (with
  :func:`vrnn.app.canvas.pen_canvas`, the only modules that call ``st.*``); ``app.py``
  just calls :func:`vrnn.app.ui.main`.
"""
