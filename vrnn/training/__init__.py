"""Training, one module per job.

- :mod:`.options`: :class:`TrainOptions` (each option written once, with its CLI help).
- :mod:`.windows`: inks -> padded training windows, the per-epoch order.
- :mod:`.distributed`: this process's rank under ``torchrun``, the device.
- :mod:`.schedules`: learning-rate and KL-weight schedules.
- :mod:`.state`: :class:`RunState` (one description of a run, read by the model card,
  the resume file and the summary) and the files that keep it.
- :mod:`.report`: :class:`Progress` reports, ``metrics.jsonl``, messages, progress bar.
- :mod:`.trainer`: :class:`Trainer`, the loop.
- :mod:`.fit`: :func:`fit`, training in one call.

The command line is :mod:`vrnn.train` (``python -m vrnn.train``).
"""

from __future__ import annotations

from .distributed import Dist, init_distributed
from .errors import TrainingError
from .fit import fit
from .options import RESUMABLE, TrainOptions
from .report import Progress
from .schedules import kl_weight, lr_factor
from .state import METRICS_FILE, STATE_FILE, STATE_JSON, RunState, load_train_state
from .trainer import Trainer
from .windows import WindowSet, epoch_order

__all__ = ["Dist", "METRICS_FILE", "Progress", "RESUMABLE", "RunState", "STATE_FILE", "STATE_JSON", "Trainer",
           "TrainOptions", "TrainingError", "WindowSet", "epoch_order", "fit", "init_distributed", "kl_weight",
           "load_train_state", "lr_factor"]
