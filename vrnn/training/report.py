"""What a run shows and writes: :class:`Progress` reports, ``metrics.jsonl``, messages, a progress bar.

Everything here reads the run through its :class:`~vrnn.training.state.RunState` and
the numbers it is handed; nothing reads the trainer.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .state import METRICS_FILE, RunState, json_safe


@dataclass(frozen=True)
class Progress:
    """A progress report, passed to ``on_progress`` every ``log_every`` steps and after each evaluation.

    ``phase``: ``"train"``, ``"valid"`` or ``"done"``. All values are nats per scored point.

    - ``train`` reports fill ``loss`` (the objective minimized: the negative ELBO with the KL
      warm-up weight and free bits applied), ``kl`` and ``nll`` (its two terms, unweighted),
      ``elbo`` (the true training ELBO, ``-(kl + nll)``: higher is better; without warm-up
      weight and free bits), ``points_per_s``, ``lr`` and ``kl_weight``.
    - ``valid`` reports fill ``valid_elbo`` (higher is better), ``valid_kl`` and ``valid_nll``;
      never the training keys.
    - every report carries ``best_valid_elbo`` (so far) and ``skipped_batches``.
    """

    phase: str
    step: int
    epoch: float
    fraction: float  # of the budget used, 0..1
    elapsed_s: float
    loss: float | None = None
    kl: float | None = None
    nll: float | None = None
    elbo: float | None = None
    points_per_s: float | None = None
    lr: float | None = None
    kl_weight: float | None = None
    valid_elbo: float | None = None
    valid_kl: float | None = None
    valid_nll: float | None = None
    best_valid_elbo: float | None = None
    skipped_batches: int = 0
    message: str = ""


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
            try:  # optional: tensorboard is not a requirement of this project
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


class StatsWindow:
    """Sums of the training statistics since the last metrics line, and the time they took."""

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

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` (validation, checkpoints) out of the points-per-second rate."""
        self.t0 += seconds

    def record(self, state: RunState, last: dict) -> dict:
        """The ``train`` metrics line (per-point averages; ``last``: the latest step's stats); resets."""
        w, pts = self.sums, max(self.sums["points"], 1.0)
        rec = {"kind": "train", "step": state.step, "epoch": round(state.epochs_done, 4),
               "loss": w["loss"] / pts, "kl": w["kl"] / pts, "nll": w["nll"] / pts,
               "elbo": -(w["kl"] + w["nll"]) / pts, "grad_norm": w["grad_norm"] / max(self.n, 1),
               "lr": last["lr"], "kl_weight": last["kl_weight"],
               "points_per_s": w["points"] / max(time.perf_counter() - self.t0, 1e-9), "elapsed_s": state.elapsed()}
        self.reset()
        return rec


class RunOutput:
    """Progress bar, messages, ``metrics.jsonl`` and ``on_progress`` of one run (rank 0 only)."""

    def __init__(self, state: RunState, *, out: Path | None, main: bool, on_progress: Callable | None,
                 log: Callable[[str], None], progress_bar: bool, tensorboard: bool):
        self.state = state
        self.main = main
        self.log = log
        self.on_progress = on_progress if main else None
        self.metrics = MetricsLog(out if main else None, truncate_to=state.metrics_bytes, tensorboard=tensorboard,
                                  warn=log)
        self.bar = None
        if main and progress_bar:
            self.bar = tqdm(total=state.total_steps(), initial=state.step, unit="step", dynamic_ncols=True,
                            mininterval=0.5, file=sys.stderr)

    def say(self, message: str) -> None:
        if not self.main:
            return
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            self.log(message)

    def say_start(self) -> None:
        s = self.state
        if s.step == 0:
            self.say(f"training {s.model} ({s.parameters:,} parameters) on {s.data[0]:,} windows / {s.data[1]:,} "
                     f"points, validating on {s.data[2]:,} windows; {s.steps_per_epoch} steps per epoch on "
                     f"{s.world_size} process(es), device {s.device}")
        else:
            self.say(f"resuming at step {s.step} (epoch {s.epoch}, batch {s.batch_index})")

    def report(self, phase: str, **values) -> None:
        s = self.state
        if self.on_progress is not None:
            self.on_progress(Progress(phase=phase, step=s.step, epoch=s.epochs_done, fraction=s.fraction(),
                                      elapsed_s=s.elapsed(), best_valid_elbo=s.best_elbo, skipped_batches=s.skipped,
                                      **values))

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def train_record(self, window: StatsWindow, last: dict) -> None:
        rec = window.record(self.state, last)
        if self.main:
            self.metrics.write(rec)
            if self.bar is not None:
                self.bar.set_postfix_str(f"loss {rec['loss']:.3f} kl {rec['kl']:.3f} nll {rec['nll']:.3f} "
                                         f"{rec['points_per_s']:,.0f} pts/s", refresh=False)
        self.report("train", loss=rec["loss"], kl=rec["kl"], nll=rec["nll"], elbo=rec["elbo"],
                    points_per_s=rec["points_per_s"], lr=rec["lr"], kl_weight=rec["kl_weight"])

    def skipped(self, s: dict) -> None:
        self.say(f"step {self.state.step}: skipped a batch with a non-finite loss or gradient (weights untouched)")
        if self.main:
            self.metrics.write({"kind": "skip", "step": self.state.step, "loss": s["loss"],
                                "grad_norm": s["grad_norm"]})

    def valid_record(self, v: dict) -> None:
        """Report a validation ``v`` (already noted in the run state: ``v`` may hold ``None`` for NaN)."""
        s = self.state
        if self.main:
            self.metrics.write({"kind": "valid", **v, "best_elbo_per_point": s.best_elbo, "elapsed_s": s.elapsed()})
            if s.best_step == s.step:
                mark = " (best)"
            elif s.best_elbo is None:
                mark = ""
            else:
                mark = f" (best {s.best_elbo:.4f} at step {s.best_step})"
            self.say(f"step {s.step}: valid ELBO {_num(v['elbo_per_point'])} nats/point "
                     f"(KL {_num(v['kl_per_point'])}, NLL {_num(v['nll_per_point'])}){mark}")
        self.report("valid", valid_elbo=v["elbo_per_point"], valid_kl=v["kl_per_point"],
                    valid_nll=v["nll_per_point"])

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.metrics.close()


def _num(x: float | None) -> str:
    return "nan" if x is None else f"{x:.4f}"
