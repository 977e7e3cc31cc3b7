"""A run described once: :class:`RunState`, and the files that keep it.

:class:`RunState` holds every fact about a run: what it trains on (sizes, data spec,
command), with which options and config, where it is (step, epoch, batch, time) and
how it does (best validation ELBO, early-stopping counter, skipped batches). The model
card (:meth:`RunState.card`), the resume file (:meth:`RunState.to_json`) and the summary
(:meth:`RunState.summary`) all read it.

``train_state.safetensors`` holds the tensors (current and best weights, Adam state,
RNG state as uint8) and the run's JSON in its header, so weights and scalars are always
one consistent snapshot; ``train_state.json`` is a readable copy of the JSON. Nothing
is pickled. Files are written to a temporary name and moved into place, so a kill at
any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load, save

from .. import __version__
from ..checkpoint import atomic_write_bytes
from .errors import TrainingError
from .options import TrainOptions

STATE_FILE = "train_state.safetensors"
STATE_JSON = "train_state.json"
METRICS_FILE = "metrics.jsonl"
STATE_FORMAT = "vrnn-train-state/1"
DATA_ORDER = "numpy.random.default_rng([seed, epoch]).permutation(windows), sharded rank::world"
#: Per-process timers of the loop (seconds); reported in the summary, not kept on resume.
TIMERS = ("loop_s", "loop_periodic_s", "compute_s", "data_s", "bookkeeping_s", "valid_s", "checkpoint_s")
#: The fields a checkpoint stores and a resumed run takes back: where the run is and how it does.
POSITION = ("step", "epoch", "batch_index", "best_elbo", "best_step", "best_elapsed_s", "bad_evals", "skipped",
            "last_valid",
            "stop_reason", "metrics_bytes")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def json_safe(value):
    """``value`` with every NaN/inf float replaced by ``None`` (strict JSON, as checkpoints need)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


@dataclass
class RunState:
    """Every fact about one training run (see the module docstring)."""

    options: TrainOptions
    config: dict  # VRNNConfig.to_dict()
    source: dict  # what it trains on and how it was started: data spec, data_args, command, resumed_with...
    parameters: int
    world_size: int
    device: str
    train_inks: int
    valid_inks: int
    data: list[int]  # train windows, train points, valid windows, valid points (a resume must match)
    steps_per_epoch: int
    mixture: list[float] | None = None  # each data source's share of an epoch (None: one source)
    step: int = 0
    epoch: int = 0
    batch_index: int = 0  # next batch of the current epoch
    elapsed_before: float = 0.0  # seconds of earlier segments of a resumed run
    best_elbo: float | None = None
    best_step: int = -1
    best_elapsed_s: float | None = None  # wall-clock seconds into the run at the best validation
    bad_evals: int = 0  # validations without improvement since the KL warm-up ended
    skipped: int = 0  # non-finite batches skipped
    last_valid: dict | None = None
    stop_reason: str | None = None
    metrics_bytes: int | None = 0  # metrics.jsonl size this state has seen (a resume truncates to it)
    timing: dict = field(default_factory=lambda: dict.fromkeys(TIMERS, 0.0))
    segment_start: float = field(default_factory=time.perf_counter)

    # ------------------------------------------------------------------ derived facts
    @property
    def model(self) -> str:
        return self.config["model"]

    @property
    def train_windows(self) -> int:
        return self.data[0]

    @property
    def train_points(self) -> int:
        return self.data[1]

    @property
    def epochs_done(self) -> float:
        return self.step / self.steps_per_epoch

    def start_segment(self) -> None:
        """The clock of this process starts now (a resumed run adds its earlier time)."""
        self.segment_start = time.perf_counter()

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.segment_start)

    def fraction(self) -> float:
        """Fraction of the budget used: the largest over the budgets that were given."""
        o, parts = self.options, [0.0]
        if o.max_steps:
            parts.append(self.step / o.max_steps)
        if o.epochs:
            parts.append(self.step / (o.epochs * self.steps_per_epoch))
        if o.minutes:
            parts.append(self.elapsed() / (60.0 * o.minutes))
        return min(1.0, max(parts))

    def budget_reason(self) -> str | None:
        """Which budget is used up (``max_steps``, ``epochs``, ``minutes``), or ``None``."""
        o = self.options
        if o.max_steps is not None and self.step >= o.max_steps:
            return "max_steps"
        if o.epochs is not None and self.step >= o.epochs * self.steps_per_epoch:
            return "epochs"
        if o.minutes is not None and self.elapsed() >= 60.0 * o.minutes:
            return "minutes"
        return None

    def total_steps(self) -> int | None:
        o, caps = self.options, []
        if o.max_steps:
            caps.append(o.max_steps)
        if o.epochs:
            caps.append(math.ceil(o.epochs * self.steps_per_epoch))
        return min(caps) if caps else None

    def patience_exhausted(self) -> bool:
        return bool(self.options.patience) and self.bad_evals >= self.options.patience

    # ------------------------------------------------------------------ updates
    def note_validation(self, v: dict, *, kl_warm: bool) -> bool:
        """Record a validation result; True when it is the best so far.

        A NaN result is kept as ``None`` and is never the best. Evaluations without
        improvement count towards ``patience`` only once the KL warm-up is over
        (``kl_warm``): while the KL weight ramps up the bound may well get worse.
        """
        self.last_valid = v = json_safe(v)
        elbo = v["elbo_per_point"]
        if elbo is not None and (self.best_elbo is None or elbo > self.best_elbo):
            self.best_elbo, self.best_step, self.bad_evals = elbo, self.step, 0
            self.best_elapsed_s = round(self.elapsed(), 1)
            return True
        if kl_warm:
            self.bad_evals += 1
        return False

    def resume_from(self, stored: dict) -> str | None:
        """Take the position and results of a checkpoint's JSON; a note when the world size changed.

        Raises :class:`TrainingError` when the data differs from the checkpoint's.
        """
        if stored.get("data") and stored["data"] != self.data:
            raise TrainingError(f"the data differs from the checkpoint's (windows/points {self.data} vs "
                                f"{stored['data']}); resume with the same --data")
        if stored.get("mixture") != self.mixture:
            raise TrainingError(f"the data mixture differs from the checkpoint's (weights {self.mixture} vs "
                                f"{stored.get('mixture')}); resume with the same --data")
        for key in POSITION:
            setattr(self, key, stored.get(key))
        for key in ("step", "epoch", "batch_index", "best_step", "bad_evals", "skipped"):
            setattr(self, key, int(getattr(self, key)))
        self.elapsed_before = float(stored["elapsed_s"])
        before = int(stored.get("steps_per_epoch", self.steps_per_epoch))
        if before == self.steps_per_epoch:
            return None
        # resumed on another number of processes: same epoch, same fraction of it
        self.batch_index = self.batch_index * self.steps_per_epoch // before
        return (f"note: {stored.get('world_size')} -> {self.world_size} processes; continuing epoch {self.epoch} "
                f"at batch {self.batch_index} of {self.steps_per_epoch}")

    # ------------------------------------------------------------------ what others read
    def to_json(self) -> dict:
        """The resume file's JSON (the trainer adds normalizer, preprocessing and optimizer)."""
        return {
            "format": STATE_FORMAT,
            **{k: getattr(self, k) for k in POSITION},
            "steps_per_epoch": self.steps_per_epoch,
            "data_order": DATA_ORDER,
            "elapsed_s": self.elapsed(),
            "data": self.data,
            "mixture": self.mixture,
            "options": self.options.to_dict(),
            "config": self.config,
            "card": self.source,
            "world_size": self.world_size,
            "date": utc_now(),
        }

    def card(self) -> dict:
        """The model card: what the best model was trained on, how, and how well it does."""
        # the weights are the best validation's: its step and time, beside the whole run's (steps, wall_time_s)
        metrics = {"best_valid_elbo_per_point": self.best_elbo, "best_step": self.best_step,
                   "best_elapsed_s": self.best_elapsed_s}
        if self.last_valid:
            metrics.update({f"last_valid_{k}": self.last_valid[k]
                            for k in ("elbo_per_point", "kl_per_point", "nll_per_point")})
            if self.last_valid.get("by_source"):  # a mixture: in the order of the card's "mixture"
                metrics["last_valid_elbo_by_source"] = [None if v is None else v["elbo_per_point"]
                                                        for v in self.last_valid["by_source"]]
        return {
            "model": self.model,
            **self.source,
            "train_inks": self.train_inks,
            "valid_inks": self.valid_inks,
            "train_windows": self.train_windows,
            "train_points": self.train_points,
            "seed": self.options.seed,
            "steps": self.step,
            "epochs": round(self.epochs_done, 3),
            "wall_time_s": round(self.elapsed(), 1),
            "stop_reason": self.stop_reason,
            "skipped_batches": self.skipped,
            "metrics": metrics,
            "options": self.options.to_dict(),
            "parameters": self.parameters,
            "world_size": self.world_size,
            "device": self.device,
            "date": utc_now(),
            "library_version": __version__,
            "torch_version": torch.__version__,
        }

    def overhead_ratio(self) -> float:
        """Loop time that is neither compute nor the periodic validation/checkpoints, over compute."""
        t = self.timing
        other = t["loop_s"] - t["compute_s"] - t["loop_periodic_s"]
        return max(other, 0.0) / max(t["compute_s"], 1e-9)

    def summary(self) -> dict:
        """The ``summary`` line of ``metrics.jsonl``: how the run ended, and where its time went."""
        return {
            "steps": self.step,
            "epochs": round(self.epochs_done, 3),
            "wall_time_s": round(self.elapsed(), 1),
            "stop_reason": self.stop_reason,
            "best_valid_elbo_per_point": self.best_elbo,
            "best_step": self.best_step,
            "best_elapsed_s": self.best_elapsed_s,
            "skipped_batches": self.skipped,
            "overhead_ratio": self.overhead_ratio(),
            **{k: round(v, 2) for k, v in self.timing.items()},
        }

    def summary_text(self, out: Path | None = None) -> str:
        best = "n/a" if self.best_elbo is None else f"{self.best_elbo:.4f} nats/point"
        lines = [
            f"stopped: {self.stop_reason} after {self.step} steps ({round(self.epochs_done, 3)} epochs, "
            f"{self.elapsed():.0f} s)",
            f"best validation ELBO: {best} at step {self.best_step}",
        ]
        if self.skipped:
            lines.append(f"skipped non-finite batches: {self.skipped}")
        if out is not None:
            lines.append(f"model: {out} (load with vrnn.load_model({str(out)!r}))")
        return "\n".join(lines)


# --------------------------------------------------------------------------- files


def save_train_state(out: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Write ``train_state.safetensors`` (tensors + the JSON ``state`` in its header) and its JSON copy."""
    blob = save(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        metadata={"format": STATE_FORMAT, "state": json.dumps(state)},
    )
    atomic_write_bytes(out / STATE_FILE, blob)
    atomic_write_bytes(out / STATE_JSON, (json.dumps(state, indent=2) + "\n").encode())


def load_train_state(out: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read what :func:`save_train_state` wrote. Raises :class:`TrainingError` on a bad file."""
    path = Path(out) / STATE_FILE
    try:
        tensors = load(path.read_bytes())
        with safe_open(str(path), "pt") as f:  # the header's metadata
            meta = f.metadata() or {}
        if meta.get("format") != STATE_FORMAT:
            raise TrainingError(f"{path}: not a training state of this version")
        return tensors, json.loads(meta["state"])
    except (OSError, SafetensorError, KeyError, json.JSONDecodeError, ValueError) as e:
        raise TrainingError(f"{path}: cannot read the training state ({' '.join(str(e).split())})") from e


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into ``optim.<param>.<key>`` tensors and JSON scalars."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v.detach().clone()  # a snapshot, not the live tensor
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Inverse of :func:`optimizer_to_flat`."""
    state: dict[int, dict] = {}
    for name, v in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = v
    for pid, st in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(st)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
