"""Inference for the app on a shared, read-only model (no Streamlit here).

One :class:`ModelService` wraps one loaded model. Sessions share it (the app keeps the
bundled models in ``st.cache_resource``). It adds no cache of its own: its
:class:`vrnn.inference.Inference` keeps the model's one cache, keyed by
:func:`vrnn.inference.ink_digest` plus the settings that change a result, so scrubbing
the time slider, switching tabs or another session drawing the same ink never
recomputes. Results are shared: callers treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vrnn.ink import Ink
from vrnn.inference import ADAPT_STEPS, Inference, LRUCache, ink_digest

__all__ = ["ADAPT_MIN_STEPS", "ADAPT_MODES", "ContinuationSettings", "LRUCache", "ModelService", "adapt_steps",
           "comparison_rows", "ink_digest", "trace_totals"]

#: "Adapt to this hand": never, on long inks only (the default), always.
ADAPT_MODES = ("off", "long", "always")
#: The shortest ink (model steps) that "long" adapts to. Adaptation pays on long prefixes: on
#: halves of held-out synthetic lines (median 228 steps) the style score rose from 0.751 to
#: 0.806 (the stage-1 VRNN: 0.728 to 0.811), on one-word prefixes (median 101) it did not move
#: (stage 1: 0.740 vs 0.744), and on a single letter (44-48 steps) some continuations wander.
#: The threshold was chosen with the stage-1 VRNN on the Omniglot validation drawers' lines
#: (style 0.645 / 0.674 / 0.669 at 150 / 120 / 100; never 0.605, always 0.710); with the
#: bundled VRNN it gives 0.707 there (never 0.654, always 0.701):
#: ``python scripts/adapt_policy.py --min-steps N``.
ADAPT_MIN_STEPS = 120


def adapt_steps(mode: str, ink_steps: int, min_steps: int = ADAPT_MIN_STEPS) -> int:
    """Adaptation steps for an ink of ``ink_steps`` model steps under ``mode`` (:data:`ADAPT_MODES`);
    ``min_steps``: the threshold of ``"long"``."""
    if mode not in ADAPT_MODES:
        raise ValueError(f"adapt mode must be one of {', '.join(ADAPT_MODES)}, not {mode!r}")
    return ADAPT_STEPS if mode == "always" or (mode == "long" and ink_steps >= min_steps) else 0


@dataclass(frozen=True)
class ContinuationSettings:
    """What the continuation controls set; ``z_mode`` is ``"sample"`` or ``"mean"`` (prior mean);
    ``adapt``: fine-tuning steps of a copy of the model on the prefix first (0: the model as trained)."""

    n: int = 4
    steps: int = 200
    temperature: float = 0.8
    seed: int = 0
    z_mode: str = "sample"
    adapt: int = 0


class ModelService:
    """A read-only model and its :class:`~vrnn.inference.Inference` (the one cache of results)."""

    def __init__(self, model, name: str):
        self.model = model
        self.name = name
        self.inference = Inference(model)

    @property
    def is_latent(self) -> bool:
        return self.model.latent_size > 0

    def trace(self, ink: Ink, seed: int = 0):
        return self.inference.trace(ink, seed=int(seed))

    def continuations(self, ink: Ink, settings: ContinuationSettings) -> list[Ink]:
        return self.inference.continue_ink(ink, n=settings.n, steps=settings.steps, temperature=settings.temperature,
                                           seed=settings.seed, z_mode=settings.z_mode, adapt=settings.adapt)

    def samples(self, n: int, steps: int, temperature: float, seed: int) -> list[Ink]:
        return self.inference.sample(n=int(n), steps=int(steps), temperature=float(temperature), seed=int(seed))

    def evaluate(self, ink: Ink, importance_samples: int = 0, seed: int = 0) -> dict:
        return self.inference.evaluate([ink], importance_samples=int(importance_samples), seed=int(seed))


def trace_totals(trace) -> dict[str, float]:
    """Totals of a trace in nats: KL, NLL, their sum (the negative ELBO), and per step."""
    kl = float(np.sum(trace.kl))
    nll = float(np.sum(trace.nll))
    steps = max(len(trace.kl) - 1, 1)  # step 0 is given, it is not predicted
    return {"steps": len(trace.kl), "kl": kl, "nll": nll, "neg_elbo": kl + nll,
            "neg_elbo_per_step": (kl + nll) / steps}


def comparison_rows(results: dict[str, dict]) -> list[dict]:
    """Bars for :func:`vrnn.app.figures.comparison_figure` from ``evaluate`` results by model name.

    A latent model contributes its ELBO and (with importance samples) its IWAE bound;
    the RNN-GMM baseline its exact log-likelihood (it has no latent to bound).
    """
    rows = []
    for name, res in results.items():
        if res.get("model") == "rnn":
            rows.append({"model": name, "measure": "exact log-likelihood", "value": res["elbo_per_point"]})
            continue
        rows.append({"model": name, "measure": "ELBO", "value": res["elbo_per_point"]})
        if "iwae_per_point" in res:
            rows.append({"model": name, "measure": f"IWAE (K={res.get('importance_samples', '?')})",
                         "value": res["iwae_per_point"]})
    return rows
