"""How to train: :class:`TrainOptions`, written once.

Each field carries its command-line help in its metadata, so ``python -m vrnn.train``
builds its flags from this dataclass (:func:`add_option_flags`, :func:`options_from_args`)
and :data:`RESUMABLE` (what ``--resume`` may change) is read from the same place.
The model's shape lives in :class:`vrnn.VRNNConfig`.
"""

from __future__ import annotations

import argparse
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields

from .errors import TrainingError


def _opt(default, help: str, group: str, *, resume: bool = False, flag: str | None = None):
    """A dataclass field with its CLI help; ``resume``: may be changed when a run is resumed."""
    return field(default=default, metadata={"help": help, "group": group, "resume": resume, "flag": flag})


#: How free bits apply (:func:`vrnn.model.free_bits_penalty`).
FREE_BITS_MODES = ("dim", "total")

#: Titles of the flag groups in ``--help`` (in this order).
GROUPS = {
    "budget": "budget (the first reached ends the run; none given: 20 epochs)",
    "optimization": "optimization",
    "run": "run",
}


@dataclass
class TrainOptions:
    """How to train (the model's shape lives in :class:`vrnn.VRNNConfig`).

    Budgets: training stops at the first of ``epochs``, ``minutes`` (wall time, summed over
    resumed segments) and ``max_steps`` that is reached; with none given it runs 20 epochs.
    Early stopping may end it sooner.
    """

    epochs: float | None = _opt(None, "passes over the training windows", "budget", resume=True)
    minutes: float | None = _opt(None, "wall time, summed over resumed segments", "budget", resume=True)
    max_steps: int | None = _opt(None, "optimizer steps", "budget", resume=True)
    seed: int = _opt(0, "initialization, data order and latent noise", "optimization")
    batch_size: int = _opt(32, "windows per step and process", "optimization")
    lr: float = _opt(2e-3, "peak Adam learning rate", "optimization", resume=True)
    warmup_steps: int = _opt(100, "linear learning-rate warm-up", "optimization")
    min_lr_ratio: float = _opt(0.05, "cosine decay ends at lr * this", "optimization")
    weight_decay: float = _opt(0.0, "Adam weight decay", "optimization")
    clip_norm: float = _opt(5.0, "gradient-norm clipping, before the optimizer step", "optimization", resume=True)
    kl_warmup_steps: int = _opt(1000, "KL weight ramps 0 -> 1 over these", "optimization")
    free_bits: float = _opt(0.0, "nats per latent dimension per point (0: off)", "optimization")
    free_bits_mode: str = _opt("dim", "how --free-bits applies: 'dim' (each latent dimension's KL per point counts "
                               "as at least --free-bits) or 'total' (their sum counts as at least latent x "
                               "--free-bits, so the rate may be spread unevenly; docs/kl_study.md)", "optimization")
    aux_weight: float = _opt(0.0, "weight of the VRNN's auxiliary cost -log p_aux(x_t | z_t) per point (0: off; "
                                  "z_t must tell the pen's move without h_{t-1}; vrnn.model.VRNN.aux_nll)",
                             "optimization")
    max_len: int = _opt(200, "training window length in points", "optimization")
    min_len: int = _opt(10, "shorter windows are dropped", "optimization")
    eval_every: int = _opt(200, "steps between validations", "optimization", resume=True)
    patience: int = _opt(10, "validations without improvement, counted after the KL warm-up (0: never stop)",
                         "optimization", resume=True)
    max_valid_windows: int = _opt(500, "validation windows per evaluation (a fixed, evenly spread subset)",
                                  "optimization")
    checkpoint_every: float = _opt(120.0, "seconds between checkpoints (0: only at evaluations and the end)",
                                   "run", resume=True)
    checkpoint_steps: int = _opt(0, "also checkpoint every N steps (0: off)", "run", resume=True)
    log_every: int = _opt(10, "steps per metrics line / progress report", "run", resume=True)
    device: str | None = _opt(None, "cpu, cuda, cuda:1 ... (default: CUDA when available)", "run", resume=True)
    progress_bar: bool = _opt(True, "no progress bar", "run", resume=True, flag="--no-progress")
    tensorboard: bool = _opt(False, "also log to DIR/tensorboard (needs tensorboard)", "run", resume=True)
    max_bad_batches: int = _opt(50, "consecutive non-finite batches before giving up", "run", resume=True)

    def __post_init__(self):
        if not (self.aux_weight >= 0 and math.isfinite(self.aux_weight)):
            raise TrainingError(f"--aux-weight must be a finite number >= 0, not {self.aux_weight}")
        if self.free_bits_mode not in FREE_BITS_MODES:
            raise TrainingError(f"--free-bits-mode must be one of {', '.join(FREE_BITS_MODES)}, "
                                f"not {self.free_bits_mode!r}")

    def budget_defaults(self) -> TrainOptions:
        """A copy with ``epochs=20`` when no budget at all was given."""
        if self.epochs is None and self.minutes is None and self.max_steps is None:
            return self.replace(epochs=20)
        return self

    def replace(self, **changes) -> TrainOptions:
        """A copy with ``changes`` (unknown names raise ``ValueError``)."""
        return TrainOptions.from_dict({**asdict(self), **changes})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainOptions:
        """Strict, like :meth:`vrnn.VRNNConfig.from_dict`: unknown fields raise ``ValueError``."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        return cls(**d)


#: Options that ``--resume`` may change: budgets, cadences, the peak learning rate, clipping,
#: device and output. The rest define the data windows, their order or the objective, so a
#: resumed run that changed them would not continue the run it resumes.
RESUMABLE = frozenset(f.name for f in fields(TrainOptions) if f.metadata["resume"])


def flag_of(name: str) -> str:
    """The command-line flag of option ``name`` (``max_steps`` -> ``--max-steps``)."""
    f = next(f for f in fields(TrainOptions) if f.name == name)
    return f.metadata["flag"] or "--" + name.replace("_", "-")


def _scalar_type(hint) -> type:
    """``int`` for ``int`` and ``int | None``, and so on."""
    if isinstance(hint, types.UnionType):
        (hint,) = [t for t in typing.get_args(hint) if t is not type(None)]
    return hint


def add_option_flags(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """One flag per :class:`TrainOptions` field, in the groups of :data:`GROUPS` (returned, by key)."""
    hints = typing.get_type_hints(TrainOptions)
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for f in fields(TrainOptions):
        g, flag, help_ = groups[f.metadata["group"]], flag_of(f.name), f.metadata["help"]
        kind = _scalar_type(hints[f.name])
        if kind is bool:
            g.add_argument(flag, dest=f.name, action="store_false" if f.default else "store_true", help=help_)
        else:
            g.add_argument(flag, dest=f.name, type=kind, default=f.default, help=help_)
    return groups


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    """The :class:`TrainOptions` of parsed arguments (from a parser with :func:`add_option_flags`)."""
    return TrainOptions(**{f.name: getattr(args, f.name) for f in fields(TrainOptions)})


def resume_changes(stored: TrainOptions, requested: dict) -> TrainOptions:
    """The options a resumed run uses: ``stored``, changed by the ``requested`` values it may change.

    ``requested``: option name -> value (for the command line: the flags written out).
    A value equal to the stored one is no change (so the run's own command plus
    ``--resume`` works); a change to an option outside :data:`RESUMABLE` raises
    :class:`~vrnn.training.errors.TrainingError` naming its flag.
    """
    current = stored.to_dict()
    unknown = set(requested) - set(current)
    if unknown:
        raise ValueError(f"unknown training options: {sorted(unknown)}")
    changes = {k: v for k, v in requested.items() if v != current[k]}
    refused = [k for k in changes if k not in RESUMABLE]
    if refused:
        k = refused[0]
        raise TrainingError(f"{flag_of(k)} cannot change when resuming (the run has {current[k]!r}): it would not "
                            f"continue the same run; resumable: "
                            f"{', '.join(sorted(flag_of(n) for n in RESUMABLE))}")
    return stored.replace(**changes)
