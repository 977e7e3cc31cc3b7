"""Likelihood bounds for the comparison tab, with their Monte Carlo standard errors
(no Streamlit here).

Every estimate is the mean of ``repeats`` evaluations with fixed seeds ``0 .. repeats-1``
(the same noise whatever K is), and its standard error is the spread of those
evaluations over ``sqrt(repeats)``. The ELBO does not depend on K, so it is always
estimated the same way (``ELBO_SAMPLES`` samples of z per evaluation); only the IWAE
bound uses K. All values are log-likelihoods per scored point in nats: higher is better.
"""

from __future__ import annotations

import math

import numpy as np

REPEATS = 4
ELBO_SAMPLES = 16


def _mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def bounds(service, ink, K: int, repeats: int = REPEATS, elbo_samples: int = ELBO_SAMPLES) -> dict:
    """``elbo``, ``elbo_se`` and, for ``K > 0``, ``iwae``, ``iwae_se`` of a latent model on ``ink``."""
    elbo_runs = [service.evaluate(ink, importance_samples=elbo_samples, seed=s) for s in range(repeats)]
    out = {"repeats": repeats, "elbo_samples": elbo_samples}
    out["elbo"], out["elbo_se"] = _mean_se([r["elbo_per_point"] for r in elbo_runs])
    if K > 0:
        runs = elbo_runs if K == elbo_samples else [service.evaluate(ink, importance_samples=K, seed=s)
                                                    for s in range(repeats)]
        out["iwae"], out["iwae_se"] = _mean_se([r["iwae_per_point"] for r in runs])
    return out


def exact(service, ink) -> float:
    """The RNN-GMM's exact log-likelihood per point (no sampling, no standard error)."""
    return float(service.evaluate(ink, importance_samples=0)["elbo_per_point"])


def rows(latent_name: str, est: dict, baseline_name: str, exact_value: float, K: int) -> list[dict]:
    """Bars for :func:`vrnn.app.figures.comparison_figure`."""
    out = [{"model": latent_name, "measure": "ELBO", "value": est["elbo"], "se": est["elbo_se"]}]
    if "iwae" in est:
        out.append({"model": latent_name, "measure": f"IWAE (K={K})", "value": est["iwae"], "se": est["iwae_se"]})
    out.append({"model": baseline_name, "measure": "exact log-likelihood", "value": exact_value, "se": 0.0})
    return out
