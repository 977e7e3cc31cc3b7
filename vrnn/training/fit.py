"""``fit``: train a model on inks in one call (what the app's background retraining uses)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ..ink import Ink
from ..model import VRNNConfig
from .options import TrainOptions
from .report import Progress
from .trainer import Trainer


def fit(
    train_inks: list[Ink],
    valid_inks: list[Ink],
    *,
    config: VRNNConfig | None = None,
    options: TrainOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop_event: threading.Event | None = None,
    base_model=None,
    out: str | Path | None = None,
    data: str = "inks passed to vrnn.train.fit",
    sources: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    valid_sources: Sequence[int] | None = None,
):
    """Train a model on inks and return the best one (by validation ELBO), on the training device.

    ``config``: a :class:`vrnn.VRNNConfig` (ignored when ``base_model`` is given: a copy of
    ``base_model`` is fine-tuned, with its normalizer, and ``base_model`` itself is never
    changed). ``valid_inks`` may be empty: then there is no early stopping and the last
    weights are returned. ``on_progress`` receives :class:`Progress` reports (from the
    training thread); setting ``stop_event`` ends training after the current step, and the
    best model so far is returned. ``out``: also write checkpoints and metrics there.
    ``data``: how the model card names the training data. ``sources``, ``weights`` and
    ``valid_sources``: train on a mixture (see :class:`Trainer`; a
    :class:`vrnn.datasets.DataMixture` has them as ``train_source``, ``weights`` and
    ``valid_source``).
    """
    trainer = Trainer(train_inks, valid_inks, config=config, options=options, out=out, base_model=base_model,
                      card={"data": data}, sources=sources, weights=weights, valid_sources=valid_sources)
    return trainer.run(on_progress=on_progress, stop_event=stop_event)
