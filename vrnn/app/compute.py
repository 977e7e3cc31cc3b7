"""Cached inference on a shared, read-only model (no Streamlit here).

One :class:`ModelService` wraps one loaded model. Sessions share it (the app keeps the
bundled models in ``st.cache_resource``); every result is cached by the ink's content
digest plus the settings that change it, so scrubbing the time slider, switching
tabs or another session drawing the same ink never recomputes. Results are treated as
read-only by callers.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vrnn.ink import Ink


def ink_digest(ink: Ink) -> str:
    """A content hash of an ink's points and pen lifts (metadata and times ignored)."""
    h = hashlib.blake2b(digest_size=16)
    off = np.ascontiguousarray(ink.to_offsets(), dtype=np.float32)
    h.update(np.asarray(off.shape, dtype=np.int64).tobytes())
    h.update(off.tobytes())
    start = ink.strokes[0][0] if ink.strokes else np.zeros(2)
    h.update(np.asarray(start, dtype=np.float64).tobytes())
    return h.hexdigest()


class LRUCache:
    """A small thread-safe LRU map; ``get_or_compute`` runs ``compute`` outside the lock.

    Two threads asking for the same missing key may both compute it (harmless, the
    results are identical); one slow computation never blocks other keys.
    """

    def __init__(self, max_entries: int = 64):
        self.max_entries = int(max_entries)
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key, default=None):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return default

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def get_or_compute(self, key, compute: Callable[[], Any]):
        sentinel = object()
        value = self.get(key, sentinel)
        if value is sentinel:
            value = compute()
            self.put(key, value)
        return value


@dataclass(frozen=True)
class ContinuationSettings:
    """What the continuation controls set; ``z_mode`` is ``"sample"`` or ``"mean"`` (prior mean)."""

    n: int = 4
    steps: int = 200
    temperature: float = 0.8
    seed: int = 0
    z_mode: str = "sample"

    def key(self) -> tuple:
        return tuple(asdict(self).values())


class ModelService:
    """A read-only model plus caches of its traces, continuations, samples and scores."""

    def __init__(self, model, name: str, max_entries: int = 64):
        self.model = model
        self.name = name
        self._cache = LRUCache(max_entries)

    @property
    def is_latent(self) -> bool:
        return getattr(self.model.config, "model", "vrnn") == "vrnn"

    def trace(self, ink: Ink, seed: int = 0):
        return self._cache.get_or_compute(("trace", ink_digest(ink), int(seed)),
                                          lambda: self.model.trace(ink, seed=int(seed)))

    def continuations(self, ink: Ink, settings: ContinuationSettings) -> list[Ink]:
        return self._cache.get_or_compute(
            ("continue", ink_digest(ink), settings.key()),
            lambda: self.model.continue_ink(ink, n=settings.n, steps=settings.steps,
                                            temperature=settings.temperature, seed=settings.seed,
                                            z_mode=settings.z_mode))

    def samples(self, n: int, steps: int, temperature: float, seed: int) -> list[Ink]:
        return self._cache.get_or_compute(
            ("sample", int(n), int(steps), float(temperature), int(seed)),
            lambda: self.model.sample(n=int(n), steps=int(steps), temperature=float(temperature), seed=int(seed)))

    def evaluate(self, ink: Ink, importance_samples: int = 0) -> dict:
        return self._cache.get_or_compute(
            ("evaluate", ink_digest(ink), int(importance_samples)),
            lambda: self.model.evaluate([ink], importance_samples=int(importance_samples)))


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
