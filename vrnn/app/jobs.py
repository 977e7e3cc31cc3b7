"""Background retraining for the app: one worker thread per job, progress read back
by the page, cancel, and a global cap on concurrent trainings across sessions.

No Streamlit here: the worker only appends progress dicts to a lock-protected
:class:`Progress`; the page polls :meth:`TrainingJob.snapshot` from a fragment.

Life cycle and memory: a session holds its :class:`TrainingJob` in its session state.
The worker thread holds only the :class:`Progress` and the stop event, never the job,
so when a session ends and its state is collected, a ``weakref.finalize`` on the job
sets the stop event: the training stops at its next step and the thread releases
the model and its slot.

Training never touches the model it starts from: ``vrnn.train.fit`` trains a copy.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import traceback
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vrnn.datasets import split_by_writer
from vrnn.ink import Ink

#: Trainings running at once in this process, over all sessions (env ``VRNN_APP_MAX_TRAININGS``).
MAX_CONCURRENT_TRAININGS = max(1, int(os.environ.get("VRNN_APP_MAX_TRAININGS", "1")))
_slots = threading.BoundedSemaphore(MAX_CONCURRENT_TRAININGS)
_running = 0
_running_lock = threading.Lock()


class TrainingBusy(RuntimeError):
    """Every training slot of this app is in use (the global cap), or this session already trains."""


def running_trainings() -> int:
    """How many trainings run now in this process (all sessions)."""
    return _running


@dataclass
class Progress:
    """What the worker reports; read by the page through :meth:`TrainingJob.snapshot`."""

    status: str = "running"
    history: list[dict] = field(default_factory=list)
    error: str | None = None
    model: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, info) -> None:
        """Record one report: a ``vrnn.train.Progress`` dataclass or a plain dict."""
        if dataclasses.is_dataclass(info):
            info = dataclasses.asdict(info)
        clean = {k: _plain(v) for k, v in dict(info).items()}
        with self.lock:
            self.history.append(clean)

    def end(self, status: str, model=None, error: str | None = None) -> None:
        with self.lock:
            self.status = status
            self.model = model
            self.error = error
            self.finished = time.time()


def _plain(v):
    """Progress values as plain Python numbers (tensors / numpy scalars would pin memory)."""
    try:
        if hasattr(v, "item"):
            return v.item()
    except (ValueError, RuntimeError):
        return None
    return v


def fresh_copy(model):
    """An independent copy of ``model`` (``vrnn.model.copy_model``: a deep copy; models are
    plain modules, their inference cache lives outside them)."""
    from vrnn.model import copy_model

    return copy_model(model)


def split_train_valid(inks: Sequence[Ink], valid_fraction: float = 0.1) -> tuple[list[Ink], list[Ink]]:
    """The library's one split (:func:`vrnn.datasets.split_by_writer`): whole writers held out
    for validation; 2 or more inks always give disjoint sets; a single ink validates on itself."""
    return split_by_writer(inks, valid_fraction=valid_fraction, reuse_single=True)


@dataclass(frozen=True)
class TrainingRequest:
    """What the user chose: data, budget, and whether to fine-tune the current model."""

    inks: tuple[Ink, ...]
    minutes: float = 1.0
    max_steps: int | None = None
    fine_tune: bool = True
    seed: int = 0
    batch_size: int = 16
    lr: float = 1e-3
    label: str = "retrained"
    base_name: str | None = None  # the model fine-tuned, as the app names it


class TrainingJob:
    """One background training. Start with :meth:`start`; poll :meth:`snapshot`; :meth:`cancel`."""

    def __init__(self, request: TrainingRequest, base_model=None):
        if not request.inks:
            raise ValueError("no ink to train on")
        self.request = request
        self.progress = Progress(status="pending")
        self.stop_event = threading.Event()
        self._base_model = base_model
        self._thread: threading.Thread | None = None
        # The session dropping its job (session end) stops the training.
        weakref.finalize(self, self.stop_event.set)

    # ------------------------------------------------------------- control
    def start(self) -> TrainingJob:
        """Start the worker; raises :class:`TrainingBusy` when the global cap is reached."""
        global _running
        if self._thread is not None:
            raise TrainingBusy("this training has already started")
        if not _slots.acquire(blocking=False):
            raise TrainingBusy(f"the app already runs {MAX_CONCURRENT_TRAININGS} training(s), "
                               "the most it allows at once; try again when one ends")
        with _running_lock:
            _running += 1
        self.progress = Progress()
        # fit() never changes the model it is given; the copy is taken here, on the session's
        # thread, so that the worker never holds the shared model.
        base = fresh_copy(self._base_model) if (self.request.fine_tune and self._base_model is not None) else None
        template = self._base_model
        self._base_model = None  # the job keeps no reference to the shared model
        self._thread = threading.Thread(
            target=_worker, args=(self.request, base, template, self.progress, self.stop_event),
            name=f"vrnn-train-{id(self):x}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # ------------------------------------------------------------- reading
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def done(self) -> bool:
        return self.progress.status in ("done", "cancelled", "failed")

    @property
    def model(self):
        """The trained model once the job is done (also after a cancel: the last weights)."""
        return self.progress.model

    def snapshot(self) -> dict:
        """A consistent copy of the progress: status, history, latest values, elapsed seconds."""
        p = self.progress
        with p.lock:
            history = list(p.history)
            status, error = p.status, p.error
            end = p.finished or time.time()
        last = history[-1] if history else {}
        step = int(last.get("step") or 0)
        elapsed = end - p.started
        fraction = last.get("fraction")
        if fraction is None:
            budget = [step / self.request.max_steps] if self.request.max_steps else []
            budget.append(elapsed / max(self.request.minutes * 60.0, 1e-9))
            fraction = max(budget)
        if status == "done":
            fraction = 1.0
        return {"status": status, "error": error, "history": history, "last": last, "step": step,
                "fraction": float(min(1.0, max(0.0, fraction))), "elapsed": elapsed}


#: Model size when training from scratch in the app: small enough to learn something in minutes on a CPU.
SCRATCH_CONFIG = dict(hidden=96, latent=8, mixtures=8, x_features=32, z_features=32, mlp=96)


#: Validations (every 25 steps) without improvement before an app training stops early; a
#: small fine-tuning set overfits within a few hundred steps, and fit() keeps the best weights.
EARLY_STOP_PATIENCE = 4


def train_options(request: TrainingRequest):
    """The :class:`vrnn.train.TrainOptions` for an app training: quiet, short warm-ups, frequent reports."""
    from vrnn.train import TrainOptions

    fine = request.fine_tune
    return TrainOptions(minutes=request.minutes, max_steps=request.max_steps, batch_size=request.batch_size,
                        lr=request.lr * (0.5 if fine else 1.0), seed=request.seed, progress_bar=False,
                        warmup_steps=10 if fine else 50, kl_warmup_steps=0 if fine else 200,
                        eval_every=25, log_every=2, patience=EARLY_STOP_PATIENCE, checkpoint_every=0.0)


def _worker(request: TrainingRequest, base_model, template, progress: Progress, stop_event: threading.Event) -> None:
    """Runs in the training thread: fit, report, always release the global slot."""
    global _running
    try:
        from vrnn.model import VRNNConfig
        from vrnn.train import fit

        train, valid = split_train_valid(request.inks)
        kind = getattr(getattr(template, "config", None), "model", "vrnn")
        config = VRNNConfig(model=kind, **SCRATCH_CONFIG) if base_model is None else None
        model = fit(train, valid, config=config, options=train_options(request), on_progress=progress.add,
                    stop_event=stop_event, base_model=base_model)
        card = dict(getattr(model, "card", {}) or {})
        card.update({"data": "inks uploaded or drawn in the app", "train_inks": len(train), "valid_inks": len(valid),
                     "validated_on_training_inks": valid is train or len(request.inks) < 5,
                     "trained_in": "VRNN Handwriting Lab app", "fine_tuned": bool(base_model is not None),
                     "fine_tuned_from": request.base_name, "label": request.label})
        model.card = card
        model.eval()
        progress.end("cancelled" if stop_event.is_set() else "done", model=model)
    except Exception as e:  # noqa: BLE001 - the page shows a one-line reason; the log keeps the rest
        traceback.print_exc()
        progress.end("failed", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    finally:
        with _running_lock:
            _running -= 1
        _slots.release()
