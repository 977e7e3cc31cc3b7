"""Train a VRNN-GMM (or the RNN-GMM baseline) on handwriting.

Command line::

    python -m vrnn.train --data synthetic --out runs/vrnn --minutes 55
    python -m vrnn.train --data ../shared/data/uji --out runs/uji --model rnn --epochs 30
    python -m vrnn.train --out runs/vrnn --resume            # after a crash or Ctrl-C
    torchrun --nproc_per_node=4 -m vrnn.train --data synthetic --out runs/ddp

Programmatic (the app retrains in a background thread)::

    model = fit(train_inks, valid_inks, config=VRNNConfig(hidden=128), options=TrainOptions(epochs=5),
                on_progress=print, stop_event=threading.Event())

What a run does, in order: preprocess every ink once (:mod:`vrnn.preprocess`), fit the
offset :class:`~vrnn.preprocess.Normalizer` on the training inks (a fine-tuned model keeps
its base's), cut training windows and pad them into one tensor, then loop: a seeded
permutation of the windows per epoch (sharded by rank under DDP), Adam with a linear
warm-up and cosine learning-rate decay over the budget, a linear KL warm-up (optional
free bits), gradient-norm clipping before ``optimizer.step()``, and a guard that skips a
batch whose loss or gradient is NaN/inf (reported, weights untouched). Every
``eval_every`` steps the validation ELBO is measured (fixed noise, so evaluations compare);
the best model is kept and training stops early after ``patience`` evaluations without
improvement (counted only once the KL warm-up is over).

An output directory ``DIR`` holds:

- ``model.safetensors`` + ``config.json``: the best model so far, with its model card;
  ``vrnn.load_model(DIR)`` loads it.
- ``train_state.safetensors``: everything to resume: current and best weights, Adam
  state tensors, RNG states (uint8 tensors), and the scalars (step, data position, epoch,
  elapsed time, early-stopping counters, options, config) as JSON in its header, so
  weights and scalars are always one consistent snapshot. ``train_state.json`` is a
  readable copy of those scalars. Nothing is pickled.
- ``metrics.jsonl``: one JSON object per line (``kind``: ``train``, ``valid``, ``skip``,
  ``summary``), truncated on resume to what the checkpoint had seen.

Files are written to a temporary name and moved into place with ``os.replace``, so a
kill at any moment leaves the previous checkpoint intact. The learning rate is a function
of the step and of the fraction of the budget used, and the data order a function of
(seed, epoch), so a resumed run continues exactly where the checkpoint was taken; on one
process with an ``--epochs``/``--max-steps`` budget it ends with the same weights as a run
that was never interrupted (``--minutes`` budgets depend on the clock).
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import math
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

if __name__ == "__main__" and "torch" not in sys.modules:
    # Idle OpenMP threads spin by default; on a small machine shared with other work that
    # made a step 10-20x slower (measured on 2 cores). Must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from .datasets import DataError, describe, load_train_valid  # noqa: E402
from .ink import Ink, InkFormatError  # noqa: E402

STATE_FILE = "train_state.safetensors"
STATE_JSON = "train_state.json"
METRICS_FILE = "metrics.jsonl"
STATE_FORMAT = "vrnn-train-state/1"


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. every batch is non-finite, or a checkpoint does not fit)."""


# --------------------------------------------------------------------------- options


@dataclass
class TrainOptions:
    """How to train (the model's shape lives in :class:`vrnn.VRNNConfig`).

    Budgets: training stops at the first of ``epochs``, ``minutes`` (wall time, summed over
    resumed segments) and ``max_steps`` that is reached; with none given it runs 20 epochs.
    Early stopping may end it sooner.
    """

    epochs: float | None = None
    minutes: float | None = None
    max_steps: int | None = None
    batch_size: int = 32  # windows per step (per process under DDP)
    lr: float = 2e-3
    warmup_steps: int = 100  # linear learning-rate warm-up
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    weight_decay: float = 0.0
    clip_norm: float = 5.0  # gradient-norm clipping, before the optimizer step
    kl_warmup_steps: int = 1000  # KL weight ramps linearly from 0 to 1 over these steps
    free_bits: float = 0.0  # nats per latent dimension per point (0: off)
    max_len: int = 200  # training window length (points)
    min_len: int = 10  # shorter windows are dropped
    eval_every: int = 200  # steps between validation runs
    patience: int = 10  # validation runs without improvement before stopping (0: never)
    max_valid_windows: int = 500  # cap on validation windows per evaluation (a fixed subset)
    checkpoint_every: float = 120.0  # seconds between checkpoints (0: only at evaluations and the end)
    checkpoint_steps: int = 0  # also checkpoint every this many steps (0: off)
    log_every: int = 10  # steps per metrics line / progress-bar update
    seed: int = 0
    device: str | None = None  # None: CUDA when available, else CPU
    progress_bar: bool = True
    tensorboard: bool = False
    max_bad_batches: int = 50  # consecutive non-finite batches before giving up

    def budget_defaults(self) -> "TrainOptions":
        """A copy with ``epochs=20`` when no budget at all was given."""
        if self.epochs is None and self.minutes is None and self.max_steps is None:
            return _replace(self, epochs=20)
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "TrainOptions":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _replace(options: TrainOptions, **changes) -> TrainOptions:
    d = asdict(options)
    d.update(changes)
    return TrainOptions(**d)


@dataclass(frozen=True)
class Progress:
    """A progress report, passed to ``on_progress`` every ``log_every`` steps and after each evaluation.

    ``phase``: ``"train"``, ``"valid"`` or ``"done"``. Losses are in nats per point;
    ``valid_elbo`` is a log-likelihood bound (higher is better).
    """

    phase: str
    step: int
    epoch: float
    fraction: float  # of the budget used, 0..1
    elapsed_s: float
    loss: float | None = None
    kl: float | None = None
    nll: float | None = None
    points_per_s: float | None = None
    lr: float | None = None
    kl_weight: float | None = None
    valid_elbo: float | None = None
    best_valid_elbo: float | None = None
    skipped_batches: int = 0
    message: str = ""


# --------------------------------------------------------------------------- data


@dataclass
class WindowSet:
    """Training windows padded once into tensors: ``x (N, L, 3)``, ``mask (N, L)``, ``lengths (N,)``."""

    x: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def points(self) -> int:
        return int(self.lengths.sum())

    def batch(self, idx: torch.Tensor, device: torch.device):
        """Rows ``idx``, trimmed to their longest window, on ``device``."""
        T = int(self.lengths[idx].max())
        x, m = self.x[idx, :T], self.mask[idx, :T]
        if device.type != "cpu":
            x, m = x.to(device, non_blocking=True), m.to(device, non_blocking=True)
        return x, m


def prepare_inks(inks: list[Ink], preprocess_config) -> list[np.ndarray]:
    """Unit-scale offsets of each ink (inks with no usable points are skipped)."""
    from .preprocess import prepare_offsets

    out = []
    for ink in inks:
        try:
            off = prepare_offsets(ink, preprocess_config)
        except InkFormatError:
            continue
        if len(off) >= 2:
            out.append(off)
    return out


def build_windows(offsets: list[np.ndarray], normalizer, max_len: int, min_len: int) -> WindowSet:
    """Cut unit-scale offsets into windows, standardize them and pad them into one :class:`WindowSet`."""
    from .preprocess import collate, make_windows

    windows = [normalizer.normalize(w) for w in make_windows(offsets, max_len=max_len, min_len=min_len)]
    if not windows:
        return WindowSet(torch.zeros(0, 1, 3), torch.zeros(0, 1), torch.zeros(0, dtype=torch.long))
    x, mask = collate(windows)
    return WindowSet(x, mask, mask.sum(1).long())


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The seeded permutation of ``n`` windows for ``epoch`` (a pure function: resume needs no state)."""
    return torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))


# --------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    """This process's place in a (possibly one-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t


def init_distributed() -> Dist:
    """Join the process group ``torchrun`` describes in the environment (nccl on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return Dist(rank=rank, world=world, local_rank=local_rank)


def _pick_device(options: TrainOptions, d: Dist) -> torch.device:
    if options.device:
        return torch.device(options.device)
    if torch.cuda.is_available():
        return torch.device("cuda", d.local_rank if d.active else torch.cuda.current_device())
    return torch.device("cpu")


# --------------------------------------------------------------------------- schedules


def lr_factor(step: int, fraction: float, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_ratio`` as ``fraction`` goes 0 -> 1."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    f = min(max(fraction, 0.0), 1.0)
    return warm * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * f)))


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up from 0 to 1 over ``warmup_steps`` (1 from the start when 0)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


# --------------------------------------------------------------------------- files

from .checkpoint import atomic_write_bytes as _atomic_write_bytes  # noqa: E402



def save_train_state(out: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Write ``train_state.safetensors`` (tensors + the JSON ``state`` in its header) and its JSON copy."""
    from safetensors.torch import save

    blob = save(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        metadata={"format": STATE_FORMAT, "state": json.dumps(state)},
    )
    _atomic_write_bytes(out / STATE_FILE, blob)
    _atomic_write_bytes(out / STATE_JSON, (json.dumps(state, indent=2) + "\n").encode())


def load_train_state(out: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read what :func:`save_train_state` wrote. Raises :class:`TrainingError` on a bad file."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(out) / STATE_FILE
    try:
        blob = path.read_bytes()
        tensors = load(blob)
        from safetensors import safe_open  # header metadata

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != STATE_FORMAT:
            raise TrainingError(f"{path}: not a training state of this version")
        return tensors, json.loads(meta["state"])
    except (OSError, SafetensorError, KeyError, json.JSONDecodeError, ValueError) as e:
        if isinstance(e, TrainingError):
            raise
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


def json_safe(value):
    """``value`` with every NaN/inf float replaced by ``None`` (strict JSON, as checkpoints need)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class MetricsLog:
    """``metrics.jsonl`` (JSON lines) plus optional TensorBoard scalars; rank 0 only."""

    def __init__(self, out: Path | None, *, truncate_to: int | None = None, tensorboard: bool = False, warn=print):
        self.file = None
        self.tb = None
        if out is None:
            return
        path = out / METRICS_FILE
        if truncate_to is not None and path.exists():
            with open(path, "r+b") as f:  # drop lines written after the checkpoint we resume from
                f.truncate(min(truncate_to, path.stat().st_size))
        self.file = open(path, "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                warn("note: --tensorboard ignored (the tensorboard package is not installed)")

    def write(self, record: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(json_safe(record)) + "\n")
            self.file.flush()
        if self.tb is not None and "step" in record:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(f"{record.get('kind', 'x')}/{k}", v, record["step"])

    def sync(self) -> int:
        """Flush to disk; the file size (what a checkpoint has seen)."""
        if self.file is None:
            return 0
        self.file.flush()
        os.fsync(self.file.fileno())
        return self.file.tell()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None


# --------------------------------------------------------------------------- trainer


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


class Trainer:
    """One training run; :meth:`run` trains and returns the best model.

    ``out``: the directory for checkpoints and logs (``None``: keep everything in memory).
    ``resume``: continue from ``out``'s ``train_state.safetensors`` (the config, options
    and normalizer stored there win; ``options_override`` may change budgets).
    """

    def __init__(
        self,
        train_inks: list[Ink],
        valid_inks: list[Ink],
        *,
        config=None,
        options: TrainOptions | None = None,
        out: str | Path | None = None,
        resume: bool = False,
        base_model=None,
        card: dict | None = None,
        dist: Dist | None = None,
        options_override: dict | None = None,
        log: Callable[[str], None] | None = None,
    ):
        from .model import VRNNConfig, build_model
        from .preprocess import Normalizer, PreprocessConfig

        self.dist = dist or Dist()
        self.out = Path(out) if out is not None else None
        self._log = log or (lambda msg: print(msg, file=sys.stderr))
        state_tensors, state = ({}, None)
        if resume:
            if self.out is None:
                raise TrainingError("resume needs an output directory")
            state_tensors, state = load_train_state(self.out)
            options = TrainOptions.from_dict(state["options"])
            config = VRNNConfig.from_dict(state["config"])
        options = (options or TrainOptions()).budget_defaults()
        if options_override:
            options = _replace(options, **options_override)
        self.options = o = options
        self.device = _pick_device(o, self.dist)
        self.card_base = dict(card or {})

        # ---- model, preprocessing and normalizer
        if base_model is not None and state is None:
            self.model = copy.deepcopy(base_model).to(self.device)  # never train the caller's model
            self.model.card = {}
            normalizer, pre_cfg = base_model.normalizer, base_model.preprocess_config
        else:
            config = config or VRNNConfig()
            with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
                torch.manual_seed(o.seed)
                self.model = build_model(config).to(self.device)
            if state is not None:
                normalizer = Normalizer.from_dict(state["normalizer"])
                pre_cfg = PreprocessConfig.from_dict(state["preprocess"])
            else:
                pre_cfg = PreprocessConfig()
                normalizer = None
        train_off = prepare_inks(train_inks, pre_cfg)
        if not train_off:
            raise DataError("no training ink has 2 or more points after preprocessing")
        if normalizer is None:
            normalizer = Normalizer.fit(train_off)
        self.model.normalizer, self.model.preprocess_config = normalizer, pre_cfg
        self.config = self.model.config
        self.train = build_windows(train_off, normalizer, o.max_len, o.min_len)
        if len(self.train) == 0:
            raise DataError(f"no training window of at least {o.min_len} points (lower --min-len or add longer inks)")
        self.valid = self._valid_windows(prepare_inks(valid_inks, pre_cfg), normalizer)
        self.n_train_inks, self.n_valid_inks = len(train_inks), len(valid_inks)
        self.data_fingerprint = [len(self.train), self.train.points, len(self.valid), self.valid.points]

        # ---- optimizer and the recurrent position
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(o.seed * 1_000_003 + 7919 * (self.dist.rank + 1))
        self.step = 0
        self.epoch = 0
        self.batch_index = 0
        self.elapsed_before = 0.0
        self.best_elbo: float | None = None
        self.best_step = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_evals = 0
        self.skipped = 0
        self.last_valid: dict | None = None
        self.stop_reason: str | None = None
        self.metrics_bytes = 0  # a fresh run starts a fresh metrics.jsonl
        if state is not None:
            self._restore(state_tensors, state)

        # ---- the DDP wrapper (gradients averaged across ranks inside backward)
        self.net = self.model
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)

        per_rank = len(self.train) // self.dist.world
        if per_rank == 0:
            raise DataError(f"{len(self.train)} training windows cannot be shared by {self.dist.world} processes")
        self.per_rank = per_rank
        self.steps_per_epoch = math.ceil(per_rank / o.batch_size)
        if state is not None and state.get("steps_per_epoch", self.steps_per_epoch) != self.steps_per_epoch:
            # resumed on another number of processes: same epoch, same fraction of it
            self.batch_index = self.batch_index * self.steps_per_epoch // state["steps_per_epoch"]
            self._log(f"note: {state['world_size']} -> {self.dist.world} processes; continuing epoch {self.epoch} "
                      f"at batch {self.batch_index} of {self.steps_per_epoch}")
        # seconds spent in this process: the whole loop, and its parts
        self.timing = dict.fromkeys(("loop_s", "loop_periodic_s", "compute_s", "data_s", "bookkeeping_s", "valid_s",
                                     "checkpoint_s"), 0.0)

    # ------------------------------------------------------------------ setup helpers
    def _valid_windows(self, offsets, normalizer) -> WindowSet:
        ws = build_windows(offsets, normalizer, self.options.max_len, self.options.min_len)
        cap = self.options.max_valid_windows
        if cap and len(ws) > cap:  # a fixed, evenly spread subset keeps evaluations comparable
            idx = torch.linspace(0, len(ws) - 1, cap).round().long()
            ws = WindowSet(ws.x[idx], ws.mask[idx], ws.lengths[idx])
        order = torch.argsort(ws.lengths, descending=True)  # similar lengths batch together
        return WindowSet(ws.x[order], ws.mask[order], ws.lengths[order])

    def _restore(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        if state.get("data") and state["data"] != self.data_fingerprint:
            raise DataError(
                f"the data differs from the checkpoint's (windows/points {self.data_fingerprint} "
                f"vs {state['data']}); resume with the same --data"
            )
        strip = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}  # noqa: E731
        try:
            self.model.load_state_dict(strip("model."))
            optimizer_from_flat(self.optimizer, tensors, state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise TrainingError(f"the checkpoint does not fit this model: {' '.join(str(e).split())[:300]}") from e
        best = strip("best.")
        self.best_state = best or None
        for key in ("step", "epoch", "batch_index", "best_step", "bad_evals", "skipped"):
            setattr(self, key, int(state[key]))
        self.elapsed_before = float(state["elapsed_s"])
        self.best_elbo = state["best_elbo"]
        self.last_valid = state.get("last_valid")
        self.metrics_bytes = state.get("metrics_bytes")
        if self.dist.is_main:  # other ranks draw fresh noise: it is theirs, not rank 0's
            self.generator.set_state(tensors["rng.generator"])
        else:
            self.generator.manual_seed(self.options.seed * 1_000_003 + 7919 * (self.dist.rank + 1) + self.step)

    # ------------------------------------------------------------------ budget
    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._segment_start)

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

    def _budget_reason(self) -> str | None:
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

    # ------------------------------------------------------------------ one step
    def _train_step(self, idx: torch.Tensor, stop_flag: float):
        """Forward, backward, clip, step. Returns the step's summed stats (all ranks)."""
        o = self.options
        t0 = time.perf_counter()
        x, m = self.train.batch(idx, self.device)
        lr = o.lr * lr_factor(self.step, self.fraction(), o.warmup_steps, o.min_lr_ratio)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        kw = kl_weight(self.step, o.kl_warmup_steps)
        t1 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        out = self.net(x, m, generator=self.generator, kl_weight=kw, free_bits=o.free_bits)
        out.loss.backward()
        # every rank sees the same averaged gradients, so every rank gets the same norm
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), o.clip_norm)
        stats = torch.stack(
            [
                out.kl.detach().sum(),
                out.nll.detach().sum(),
                out.points.detach().float(),
                out.loss.detach() * out.points.detach(),
                gnorm.detach().float(),
                torch.tensor(stop_flag, device=gnorm.device),
            ]
        )
        self.dist.all_sum(stats)
        kl_s, nll_s, pts, loss_s, gn, stop = stats.tolist()
        finite = all(math.isfinite(v) for v in (kl_s, nll_s, loss_s, gn))
        if finite:
            self.optimizer.step()
        t2 = time.perf_counter()
        self.timing["data_s"] += t1 - t0
        self.timing["compute_s"] += t2 - t1
        return finite, {"kl": kl_s, "nll": nll_s, "points": pts, "loss": loss_s, "grad_norm": gn / self.dist.world,
                        "lr": lr, "kl_weight": kw, "stop": stop > 0}

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def evaluate_valid(self) -> dict | None:
        """Validation ELBO per point (fixed noise), summed over ranks; ``None`` without validation data."""
        if len(self.valid) == 0:
            return None
        t0 = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        gen = torch.Generator(device=self.device)
        gen.manual_seed(12345 + self.dist.rank)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        mine = torch.arange(self.dist.rank, len(self.valid), self.dist.world)
        bs = max(64, 4 * self.options.batch_size)
        for i in range(0, len(mine), bs):
            x, m = self.valid.batch(mine[i : i + bs], self.device)
            out = self.model(x, m, generator=gen)
            sums += torch.stack([out.kl.sum(), out.nll.sum(), out.points.float()]).double()
        self.dist.all_sum(sums)
        kl_s, nll_s, pts = sums.tolist()
        self.model.train(was_training)
        self.timing["valid_s"] += time.perf_counter() - t0
        pts = max(pts, 1.0)
        return {"step": self.step, "elbo_per_point": -(kl_s + nll_s) / pts, "kl_per_point": kl_s / pts,
                "nll_per_point": nll_s / pts, "points": int(pts)}

    def _after_validation(self, v: dict) -> bool:
        """Track the best model; True when early stopping says stop."""
        self.last_valid = v = json_safe(v)  # a NaN evaluation is recorded as None and never "best"
        elbo = v["elbo_per_point"]
        if elbo is not None and (self.best_elbo is None or elbo > self.best_elbo):
            self.best_elbo, self.best_step, self.bad_evals = v["elbo_per_point"], self.step, 0
            self.best_state = {k: t.detach().to("cpu", copy=True) for k, t in self.model.state_dict().items()}
            return False
        if self.step >= self.options.kl_warmup_steps:
            self.bad_evals += 1
        return bool(self.options.patience) and self.bad_evals >= self.options.patience

    # ------------------------------------------------------------------ checkpoints
    def card(self) -> dict:
        """The model card: what the best model was trained on, how, and how well it does."""
        v = self.last_valid or {}
        metrics = {"best_valid_elbo_per_point": self.best_elbo, "best_step": self.best_step}
        if v:
            metrics.update({f"last_valid_{k}": v[k] for k in ("elbo_per_point", "kl_per_point", "nll_per_point")})
        from . import __version__

        card = {
            "model": self.config.model,
            **self.card_base,
            "train_inks": self.n_train_inks,
            "valid_inks": self.n_valid_inks,
            "train_windows": len(self.train),
            "train_points": self.train.points,
            "seed": self.options.seed,
            "steps": self.step,
            "epochs": round(self.step / self.steps_per_epoch, 3),
            "wall_time_s": round(self.elapsed(), 1),
            "stop_reason": self.stop_reason,
            "skipped_batches": self.skipped,
            "metrics": metrics,
            "options": asdict(self.options),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "world_size": self.dist.world,
            "device": self.device.type,
            "date": _now(),
            "library_version": __version__,
            "torch_version": torch.__version__,
        }
        return card

    def best_model(self):
        """The model with the best validation weights (the last ones when never validated), as a copy."""
        m = copy.deepcopy(self.model)
        if self.best_state is not None:
            m.load_state_dict(self.best_state)
        m.normalizer, m.preprocess_config = self.model.normalizer, self.model.preprocess_config
        m.card = self.card()
        return m.eval()

    def checkpoint(self, metrics: MetricsLog) -> None:
        """Export the best model and write the training state (rank 0, when there is an ``out``)."""
        if self.out is None or not self.dist.is_main:
            return
        t0 = time.perf_counter()
        best = self.best_model()
        best.save(self.out, card=best.card)  # per-file atomic; config.json (last) holds the weights' checksum
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        opt_tensors, opt_meta = optimizer_to_flat(self.optimizer)
        tensors.update(opt_tensors)
        tensors["rng.generator"] = self.generator.get_state()
        state = {
            "format": STATE_FORMAT,
            "step": self.step,
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "steps_per_epoch": self.steps_per_epoch,
            "data_order": "numpy.random.default_rng([seed, epoch]).permutation(windows), sharded rank::world",
            "elapsed_s": self.elapsed(),
            "best_elbo": self.best_elbo,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "skipped": self.skipped,
            "last_valid": self.last_valid,
            "stop_reason": self.stop_reason,
            "metrics_bytes": metrics.sync(),
            "data": self.data_fingerprint,
            "options": asdict(self.options),
            "config": self.config.to_dict(),
            "normalizer": self.model.normalizer.to_dict(),
            "preprocess": self.model.preprocess_config.to_dict(),
            "optimizer": opt_meta,
            "card": self.card_base,
            "world_size": self.dist.world,
            "date": _now(),
        }
        save_train_state(self.out, tensors, state)
        self.timing["checkpoint_s"] += time.perf_counter() - t0

    # ------------------------------------------------------------------ the loop
    def run(self, on_progress: Callable[[Progress], None] | None = None, stop_event: threading.Event | None = None):
        """Train until a budget, early stopping or ``stop_event``; checkpoint; return the best model."""
        o, d = self.options, self.dist
        self._segment_start = time.perf_counter()
        if self.out is not None and d.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        ui = _RunOutput(self, on_progress)
        ui.say_start()
        window = _StatsWindow()
        last_ckpt_t, last_ckpt_step = time.perf_counter(), self.step
        bad_in_a_row = 0
        self.model.train()
        self.stop_reason = self._budget_reason()
        if o.patience and self.bad_evals >= o.patience:  # a resumed run that had stopped early
            self.stop_reason = "early_stopping"
        loop_t0 = time.perf_counter()
        periodic_t0 = self.timing["valid_s"] + self.timing["checkpoint_s"]
        try:
            while self.stop_reason is None:
                order = epoch_order(len(self.train), o.seed, self.epoch)[d.rank :: d.world][: self.per_rank]
                while self.batch_index < self.steps_per_epoch and self.stop_reason is None:
                    idx = order[self.batch_index * o.batch_size : (self.batch_index + 1) * o.batch_size]
                    finite, s = self._train_step(idx, float(stop_event is not None and stop_event.is_set()))
                    tb = time.perf_counter()
                    self.step += 1
                    self.batch_index += 1
                    if finite:
                        bad_in_a_row = 0
                        window.add(s)
                    else:
                        self.skipped += 1
                        bad_in_a_row += 1
                        ui.skipped(s)
                        if bad_in_a_row >= o.max_bad_batches:
                            raise TrainingError(f"{bad_in_a_row} non-finite batches in a row: training diverged "
                                                f"(try a lower --lr); the last checkpoint is intact")
                    if self.step % o.log_every == 0 and window.n:
                        ui.train_record(window, s)
                    ui.advance()
                    if s["stop"]:
                        self.stop_reason = "cancelled"
                    if self.stop_reason is None:
                        self.stop_reason = self._budget_reason()
                    te = time.perf_counter()
                    self.timing["bookkeeping_s"] += te - tb
                    # ---- periodic: validation, checkpoints (not counted in points/s)
                    want_eval = self.step % o.eval_every == 0
                    if want_eval:
                        self._validate(ui)
                    timed = o.checkpoint_every and time.perf_counter() - last_ckpt_t >= o.checkpoint_every
                    stepped = o.checkpoint_steps and self.step - last_ckpt_step >= o.checkpoint_steps
                    if self.stop_reason is None and (want_eval or timed or stepped):
                        self.checkpoint(ui.metrics)
                        last_ckpt_t, last_ckpt_step = time.perf_counter(), self.step
                    window.t0 += time.perf_counter() - te
                if self.batch_index >= self.steps_per_epoch:  # the next epoch gets its own permutation
                    self.epoch, self.batch_index = self.epoch + 1, 0
            self.timing["loop_s"] += time.perf_counter() - loop_t0
            self.timing["loop_periodic_s"] += self.timing["valid_s"] + self.timing["checkpoint_s"] - periodic_t0
            # ---- the end: the last stats, a last validation, a last checkpoint, a summary
            if window.n:
                ui.train_record(window, s)
            if self.last_valid is None or self.last_valid.get("step") != self.step:
                self._validate(ui)
            ui.metrics.write({"kind": "summary", **self.summary()})
            self.checkpoint(ui.metrics)
            ui.report("done", message=self.summary_text())
            return self.best_model()
        finally:
            ui.close()

    def _validate(self, ui: "_RunOutput") -> None:
        v = self.evaluate_valid()
        if v is None:
            return
        if self._after_validation(v) and self.stop_reason is None:
            self.stop_reason = "early_stopping"
        ui.valid_record(v)

    def summary(self) -> dict:
        t = self.timing
        return {
            "steps": self.step,
            "epochs": round(self.step / self.steps_per_epoch, 3),
            "wall_time_s": round(self.elapsed(), 1),
            "stop_reason": self.stop_reason,
            "best_valid_elbo_per_point": self.best_elbo,
            "best_step": self.best_step,
            "skipped_batches": self.skipped,
            "overhead_ratio": self.overhead_ratio(),
            **{k: round(v, 2) for k, v in t.items()},
        }

    def overhead_ratio(self) -> float:
        """Loop time that is neither compute nor the periodic validation/checkpoints, over compute."""
        t = self.timing
        other = t["loop_s"] - t["compute_s"] - t["loop_periodic_s"]  # periodic: validation + checkpoints
        return max(other, 0.0) / max(t["compute_s"], 1e-9)

    def summary_text(self) -> str:
        s = self.summary()
        best = "n/a" if s["best_valid_elbo_per_point"] is None else f"{s['best_valid_elbo_per_point']:.4f} nats/point"
        lines = [
            f"stopped: {s['stop_reason']} after {s['steps']} steps ({s['epochs']} epochs, {s['wall_time_s']:.0f} s)",
            f"best validation ELBO: {best} at step {s['best_step']}",
        ]
        if s["skipped_batches"]:
            lines.append(f"skipped non-finite batches: {s['skipped_batches']}")
        if self.out is not None:
            lines.append(f"model: {self.out} (load with vrnn.load_model({str(self.out)!r}))")
        return "\n".join(lines)


class _StatsWindow:
    """Sums of the training statistics since the last metrics line."""

    KEYS = ("kl", "nll", "points", "loss", "grad_norm")

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums = dict.fromkeys(self.KEYS, 0.0)
        self.n = 0
        self.t0 = time.perf_counter()

    def add(self, s: dict) -> None:
        for k in self.KEYS:
            self.sums[k] += s[k]
        self.n += 1

    def record(self, trainer: Trainer, s: dict) -> dict:
        """The ``train`` metrics line (per point averages); resets the window."""
        w, pts = self.sums, max(self.sums["points"], 1.0)
        rec = {"kind": "train", "step": trainer.step, "epoch": round(trainer.step / trainer.steps_per_epoch, 4),
               "loss": w["loss"] / pts, "kl": w["kl"] / pts, "nll": w["nll"] / pts,
               "elbo": -(w["kl"] + w["nll"]) / pts, "grad_norm": w["grad_norm"] / self.n,
               "lr": s["lr"], "kl_weight": s["kl_weight"],
               "points_per_s": w["points"] / max(time.perf_counter() - self.t0, 1e-9), "elapsed_s": trainer.elapsed()}
        self.reset()
        return rec


class _RunOutput:
    """What a run shows and writes: progress bar, messages, metrics.jsonl, ``on_progress`` (rank 0 only)."""

    def __init__(self, trainer: Trainer, on_progress):
        self.t = trainer
        self.main = trainer.dist.is_main
        self.on_progress = on_progress if self.main else None
        o = trainer.options
        self.metrics = MetricsLog(trainer.out if self.main else None, truncate_to=trainer.metrics_bytes,
                                  tensorboard=o.tensorboard, warn=trainer._log)
        self.bar = None
        if self.main and o.progress_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=trainer.total_steps(), initial=trainer.step, unit="step", dynamic_ncols=True,
                            mininterval=0.5, file=sys.stderr)

    def say(self, message: str) -> None:
        if not self.main:
            return
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            self.t._log(message)

    def say_start(self) -> None:
        t = self.t
        if t.step == 0:
            self.say(f"training {t.config.model} ({sum(p.numel() for p in t.model.parameters()):,} parameters) on "
                     f"{len(t.train):,} windows / {t.train.points:,} points, validating on {len(t.valid):,} windows; "
                     f"{t.steps_per_epoch} steps per epoch on {t.dist.world} process(es), device {t.device}")
        else:
            self.say(f"resuming at step {t.step} (epoch {t.epoch}, batch {t.batch_index})")

    def report(self, phase: str, **kw) -> None:
        t = self.t
        if self.on_progress is not None:
            self.on_progress(Progress(phase=phase, step=t.step, epoch=t.step / t.steps_per_epoch,
                                      fraction=t.fraction(), elapsed_s=t.elapsed(), best_valid_elbo=t.best_elbo,
                                      skipped_batches=t.skipped, **kw))

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def train_record(self, window: _StatsWindow, s: dict) -> None:
        rec = window.record(self.t, s)
        if self.main:
            self.metrics.write(rec)
            if self.bar is not None:
                self.bar.set_postfix_str(f"loss {rec['loss']:.3f} kl {rec['kl']:.3f} nll {rec['nll']:.3f} "
                                         f"{rec['points_per_s']:,.0f} pts/s", refresh=False)
        self.report("train", loss=rec["loss"], kl=rec["kl"], nll=rec["nll"], points_per_s=rec["points_per_s"],
                    lr=rec["lr"], kl_weight=rec["kl_weight"])

    def skipped(self, s: dict) -> None:
        self.say(f"step {self.t.step}: skipped a batch with a non-finite loss or gradient (weights untouched)")
        if self.main:
            self.metrics.write({"kind": "skip", "step": self.t.step, "loss": s["loss"], "grad_norm": s["grad_norm"]})

    def valid_record(self, v: dict) -> None:
        t = self.t
        if self.main:
            self.metrics.write({"kind": "valid", **v, "best_elbo_per_point": t.best_elbo, "elapsed_s": t.elapsed()})
            if t.best_step == t.step:
                mark = " (best)"
            elif t.best_elbo is None:
                mark = ""
            else:
                mark = f" (best {t.best_elbo:.4f} at step {t.best_step})"
            self.say(f"step {t.step}: valid ELBO {v['elbo_per_point']:.4f} nats/point "
                     f"(KL {v['kl_per_point']:.4f}, NLL {v['nll_per_point']:.4f}){mark}")
        self.report("valid", valid_elbo=v["elbo_per_point"], kl=v["kl_per_point"], nll=v["nll_per_point"])

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.metrics.close()


def fit(
    train_inks: list[Ink],
    valid_inks: list[Ink],
    *,
    config=None,
    options: TrainOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop_event: threading.Event | None = None,
    base_model=None,
    out: str | Path | None = None,
):
    """Train a model on inks and return the best one (by validation ELBO), on the training device.

    ``config``: a :class:`vrnn.VRNNConfig` (ignored when ``base_model`` is given: a copy of
    ``base_model`` is fine-tuned, with its normalizer, and ``base_model`` itself is never
    changed). ``valid_inks`` may be empty: then there is no early stopping and the last
    weights are returned. ``on_progress`` receives :class:`Progress` reports (from the
    training thread); setting ``stop_event`` ends training after the current step, and the
    best model so far is returned. ``out``: also write checkpoints and metrics there.
    """
    trainer = Trainer(train_inks, valid_inks, config=config, options=options, out=out, base_model=base_model,
                      card={"data": "inks passed to vrnn.train.fit"})
    return trainer.run(on_progress=on_progress, stop_event=stop_event)


# --------------------------------------------------------------------------- command line


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones and those the help text already states."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vrnn.train",
        allow_abbrev=False,  # --resume may override only the flags written out (see _explicit_flags)
        description="Train a VRNN-GMM (or the RNN-GMM baseline) on handwriting.",
        formatter_class=HelpFormatter,
    )
    d = TrainOptions()
    g = p.add_argument_group("data and output")
    g.add_argument("--data", help="'synthetic' or a file / folder of ink files (iam, uji, inkml, ndjson, npz, json)")
    g.add_argument("--out", required=True, help="output directory (checkpoints, metrics.jsonl)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g.add_argument("--synthetic-lines", type=int, default=2000, help="training lines drawn from the synthetic corpus")
    g.add_argument("--valid-fraction", type=float, default=0.1, help="inks held out (by writer) for validation")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic corpus and of the writer split")
    from .model import VRNNConfig

    c = VRNNConfig()
    g = p.add_argument_group("model (ignored with --resume: the checkpoint's config is used)")
    g.add_argument("--model", choices=("vrnn", "rnn"), default="vrnn", help="VRNN-GMM or the RNN-GMM baseline")
    g.add_argument("--hidden", type=int, default=c.hidden, help="recurrent state size")
    g.add_argument("--latent", type=int, default=c.latent, help="z dimensions (vrnn)")
    g.add_argument("--mixtures", type=int, default=c.mixtures, help="Gaussian mixture components")
    g.add_argument("--rnn", choices=("lstm", "gru"), default=c.rnn, help="recurrent cell")
    g.add_argument("--features", type=int, default=c.x_features, help="size of phi_x and phi_z")
    g.add_argument("--mlp", type=int, default=c.mlp, help="hidden width of the prior / encoder / decoder MLPs")
    g = p.add_argument_group("budget (the first reached ends the run; none given: 20 epochs)")
    g.add_argument("--epochs", type=float, help="passes over the training windows")
    g.add_argument("--minutes", type=float, help="wall time, summed over resumed segments")
    g.add_argument("--max-steps", type=int, help="optimizer steps")
    g = p.add_argument_group("optimization")
    g.add_argument("--seed", type=int, default=d.seed, help="initialization, data order and latent noise")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per step and process")
    g.add_argument("--lr", type=float, default=d.lr, help="peak Adam learning rate")
    g.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="linear learning-rate warm-up")
    g.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio, help="cosine decay ends at lr * this")
    g.add_argument("--clip-norm", type=float, default=d.clip_norm, help="gradient-norm clipping")
    g.add_argument("--kl-warmup-steps", type=int, default=d.kl_warmup_steps, help="KL weight ramps 0 -> 1 over these")
    g.add_argument("--free-bits", type=float, default=d.free_bits, help="nats per latent dimension per point")
    g.add_argument("--max-len", type=int, default=d.max_len, help="training window length in points")
    g.add_argument("--min-len", type=int, default=d.min_len, help="shorter windows are dropped")
    g.add_argument("--eval-every", type=int, default=d.eval_every, help="steps between validations")
    g.add_argument("--patience", type=int, default=d.patience, help="validations without improvement (0: never stop)")
    g = p.add_argument_group("run")
    g.add_argument("--checkpoint-every", type=float, default=d.checkpoint_every, help="seconds between checkpoints")
    g.add_argument("--checkpoint-steps", type=int, default=d.checkpoint_steps, help="also every N steps (0: off)")
    g.add_argument("--log-every", type=int, default=d.log_every, help="steps per metrics line")
    g.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    g.add_argument("--threads", type=int, help="torch CPU threads (default: cores / processes)")
    g.add_argument("--tensorboard", action="store_true", help="also log to DIR/tensorboard (needs tensorboard)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


# flags that may change on --resume (everything else comes from the checkpoint)
_RESUMABLE = ("epochs", "minutes", "max_steps", "patience", "checkpoint_every", "checkpoint_steps", "log_every",
              "device", "progress_bar", "tensorboard")


def _options_from_args(a) -> TrainOptions:
    return TrainOptions(
        epochs=a.epochs, minutes=a.minutes, max_steps=a.max_steps, batch_size=a.batch_size, lr=a.lr,
        warmup_steps=a.warmup_steps, min_lr_ratio=a.min_lr_ratio, clip_norm=a.clip_norm,
        kl_warmup_steps=a.kl_warmup_steps, free_bits=a.free_bits, max_len=a.max_len, min_len=a.min_len,
        eval_every=a.eval_every, patience=a.patience, checkpoint_every=a.checkpoint_every,
        checkpoint_steps=a.checkpoint_steps, log_every=a.log_every, seed=a.seed, device=a.device,
        progress_bar=not a.no_progress, tensorboard=a.tensorboard,
    )


def _explicit_flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Destinations of the options written on the command line (to know what --resume may override)."""
    given = set()
    for action in parser._actions:
        if any(a == s or a.startswith(s + "=") for a in argv for s in action.option_strings):
            given.add(action.dest)
    if "no_progress" in given:
        given.add("progress_bar")
    return given


def _fail(message: str, code: int = 2) -> int:
    """One line on stderr, no traceback; exit code 2 for bad input (data, flags, checkpoint)."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    a = parser.parse_args(argv)
    out = Path(a.out)
    dist = init_distributed()
    try:
        if a.threads or dist.active:  # under torchrun the processes on one machine share its cores
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world))
            torch.set_num_threads(a.threads or max(1, (os.cpu_count() or 1) // local_world))
        if dist.is_main:
            try:  # fail now, not after minutes of preprocessing
                out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                return _fail(f"--out {out}: cannot create the folder ({e.strerror or e})")
        resume = a.resume and (out / STATE_FILE).exists()
        if a.resume and not resume and dist.is_main:
            print(f"note: no checkpoint in {out}; starting a new run", file=sys.stderr)
        if not resume and (out / STATE_FILE).exists():
            return _fail(f"{out} already holds a training run; pass --resume to continue it, or choose another --out")
        stored = None
        if resume:
            _, stored = load_train_state(out)
            if a.data is not None and a.data != stored["card"].get("data"):
                return _fail(f"--data {a.data} differs from the run's data {stored['card'].get('data')}; "
                             f"resume with the same data (or leave --data out)")
            a.data = stored["card"]["data"]
            data_args = stored["card"]["data_args"]
        elif a.data is None:
            return _fail("--data is required (or --resume an existing run)")
        else:
            data_args = {"synthetic_lines": a.synthetic_lines, "valid_fraction": a.valid_fraction, "seed": a.data_seed}
        train_inks, valid_inks = load_train_valid(a.data, **data_args)
        if dist.is_main:
            print(f"data {a.data}: train {describe(train_inks)}; valid {describe(valid_inks)}", file=sys.stderr)
        if resume:
            card = dict(stored["card"])
            card["resumed_with"] = [*card.get("resumed_with", []), "python -m vrnn.train " + shlex.join(argv)]
        else:
            card = {"data": a.data, "data_args": data_args, "command": "python -m vrnn.train " + shlex.join(argv)}
        from .model import VRNNConfig

        config = VRNNConfig(model=a.model, hidden=a.hidden, latent=a.latent, mixtures=a.mixtures, rnn=a.rnn,
                            x_features=a.features, z_features=a.features, mlp=a.mlp)
        options = _options_from_args(a)
        override = None
        if resume:
            given = _explicit_flags(parser, argv)
            override = {k: getattr(options, k) for k in _RESUMABLE if k in given}
        trainer = Trainer(train_inks, valid_inks, config=config, options=options, out=out, resume=resume,
                          card=card, dist=dist, options_override=override)
    except (DataError, InkFormatError, TrainingError) as e:
        return _fail(str(e))
    except ValueError as e:  # a bad size flag, from VRNNConfig
        return _fail(str(e))

    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():

        def ask_to_stop(signum, frame):
            if stop.is_set():  # a second Ctrl-C: stop right now
                raise KeyboardInterrupt
            stop.set()
            print("\nstopping after this step (checkpointing; Ctrl-C again to abort)", file=sys.stderr)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, ask_to_stop)
    try:
        trainer.run(stop_event=stop)
    except TrainingError as e:
        return _fail(str(e), code=1)
    except KeyboardInterrupt:
        return _fail("aborted; the last checkpoint is intact (continue with --resume)", code=130)
    except OSError as e:  # disk full, folder removed, permissions...
        return _fail(f"cannot write the checkpoint in {out}: {e}", code=1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if dist.active:
            torch.distributed.destroy_process_group()
    if dist.is_main:
        print(trainer.summary_text())
    return 130 if trainer.stop_reason == "cancelled" else 0


if __name__ == "__main__":
    sys.exit(main())
