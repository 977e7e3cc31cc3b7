"""The Streamlit app's logic, importable and testable without Streamlit.

- :mod:`vrnn.app.figures`: pure plotly figure builders (ink, continuations in rows,
  pen replay at the pen's speed, samples, training curves, comparison).
- :mod:`vrnn.app.trace_views`: the linked views of one trace (KL along the ink, KL / NLL
  per step, whitened posterior vs prior, mean ± σ per latent dimension, per-unit KL
  heatmap) and the per-step cursor positions for the time player.
- :mod:`vrnn.app.canvas`, :mod:`vrnn.app.player`: custom components (components v2,
  inline HTML / CSS / JS): the pen canvas, and the browser-side time player.
- :mod:`vrnn.app.examples`: built-in example inks.
- :mod:`vrnn.app.compute`: inference on a shared, read-only model; :mod:`vrnn.app.scores`:
  likelihood bounds with Monte Carlo standard errors.
- :mod:`vrnn.app.jobs`: background retraining with progress, cancel and a global cap.
- :mod:`vrnn.app.exports`: ink JSON / SVG, figure HTML, trace CSV, model zip.
- :mod:`vrnn.app.state`: per-session data (uploads, collected drawings, retrained models).
- The Streamlit page, one way down: :mod:`vrnn.app.ui` -> :mod:`vrnn.app.panels` ->
  :mod:`vrnn.app.resources` (models shared by all sessions); ``app.py`` just calls
  :func:`vrnn.app.ui.main`.
"""
