"""Train a VRNN-GMM (or the RNN-GMM baseline) on handwriting: the command line.

Command line::

    python -m vrnn.train --data synthetic --out runs/vrnn --minutes 55
    python -m vrnn.train --data ../shared/data/uji --out runs/uji --model rnn --epochs 30
    python -m vrnn.train --data synthetic:0.6 --data ../shared/data/omniglot/omniglot.npz:0.4 --out runs/mix
    python -m vrnn.train --out runs/vrnn --resume            # after a crash or Ctrl-C
    python -m vrnn.train --out runs/vrnn --resume --minutes 90 --lr 1e-3   # a longer budget
    python -m vrnn.train --init-from pretrained/vrnn --data ../my_ink --out runs/mine --minutes 10  # fine-tune
    torchrun --nproc_per_node=4 -m vrnn.train --data synthetic --out runs/ddp

Programmatic (the app retrains in a background thread)::

    model = fit(train_inks, valid_inks, config=VRNNConfig(hidden=128), options=TrainOptions(epochs=5),
                on_progress=print, stop_event=threading.Event())

The training itself lives in :mod:`vrnn.training` (one module per job); this module
parses the flags (built from :class:`TrainOptions` and the model table below), loads the
data (:mod:`vrnn.datasets`) and runs a :class:`~vrnn.training.Trainer`.

``--data SOURCE[:WEIGHT]`` may be repeated: a mixture of sources, each with its share of
every epoch (:func:`vrnn.datasets.load_mixture`); the model card records it.

An output directory ``DIR`` holds:

- ``model.safetensors`` + ``config.json``: the best model so far, with its model card;
  ``vrnn.load_model(DIR)`` loads it.
- ``train_state.safetensors``: everything to resume (:mod:`vrnn.training.state`);
  ``train_state.json`` is a readable copy of its scalars. Nothing is pickled.
- ``metrics.jsonl``: one JSON object per line (``kind``: ``train``, ``valid``, ``skip``,
  ``summary``), truncated on resume to what the checkpoint had seen.

``--resume`` continues the run in ``--out`` with its config, options, data and
normalizer. Flags written out beside it may change the budget, the cadences, the peak
learning rate, clipping, device and output (:data:`vrnn.training.RESUMABLE`); a flag that
would change anything else (the model, the data, the windows, the seed, the objective)
is refused with exit code 2. Repeating the run's own values is fine. On one process with
an ``--epochs``/``--max-steps`` budget a resumed run ends with the same weights as a run
that was never interrupted (``--minutes`` budgets depend on the clock).

``--init-from CHECKPOINT`` starts a new run from a saved model's weights, config,
normalizer and preprocessing (fine-tuning, or a longer training of a bundled model with a
fresh optimizer and learning-rate schedule). Model flags may repeat the checkpoint's
values but not change them. The card's ``init_from`` names the checkpoint and where its
own training stood (steps and minutes of its saved model), so the curves of the two runs
can be read as one (``scripts/learning_curves.py`` does).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path

from .cli import HelpFormatter, fail, quiet_openmp, set_threads

# Before torch loads (the imports below load it): a CLI's idle OpenMP threads sleep (see vrnn.cli).
quiet_openmp(__name__ == "__main__")

from .datasets import DataError, DataSource, describe, load_mixture  # noqa: E402
from .ink import InkFormatError  # noqa: E402
from .checkpoint import CheckpointError  # noqa: E402
from .model import VRNNConfig, load_model  # noqa: E402
from .training import (  # noqa: E402,F401  (the names this module always offered)
    METRICS_FILE,
    STATE_FILE,
    Progress,
    RunState,
    Trainer,
    TrainingError,
    TrainOptions,
    fit,
    init_distributed,
    kl_weight,
    load_train_state,
    lr_factor,
)
from .training.options import add_option_flags, options_from_args, resume_changes  # noqa: E402
from .training.state import optimizer_from_flat, optimizer_to_flat  # noqa: E402,F401

PROG = "python -m vrnn.train"

#: Model flags: flag -> (VRNNConfig fields it sets, argparse keywords). Written once: the
#: parser, the config and the resume check all read this table.
MODEL_FLAGS = {
    "--model": (("model",), dict(choices=("vrnn", "rnn"), help="VRNN-GMM or the RNN-GMM baseline")),
    "--hidden": (("hidden",), dict(type=int, help="recurrent state size")),
    "--latent": (("latent",), dict(type=int, help="z dimensions (vrnn)")),
    "--mixtures": (("mixtures",), dict(type=int, help="Gaussian mixture components")),
    "--rnn": (("rnn",), dict(choices=("lstm", "gru"), help="recurrent cell")),
    "--features": (("x_features", "z_features"), dict(type=int, help="size of phi_x and phi_z")),
    "--z-features": (("z_features",), dict(type=int, help="size of phi_z (default: --features)")),
    "--mlp": (("mlp",), dict(type=int, help="hidden width of the decoder MLP (and of prior / encoder unless "
                                            "--latent-mlp is given)")),
    "--latent-mlp": (("latent_mlp",), dict(type=int, help="hidden width of the prior and encoder MLPs "
                                                          "(default: --mlp)")),
}
#: Model flags whose default is another flag's value (None here: taken from that flag).
_DEFAULTS_FROM = {"--z-features": "--features"}
#: Data flags: flag -> (key in the card's ``data_args``, argparse keywords).
DATA_FLAGS = {
    "--synthetic-lines": ("synthetic_lines", dict(type=int, default=2000,
                                                  help="training lines drawn from the synthetic corpus")),
    "--valid-fraction": ("valid_fraction", dict(type=float, default=0.1,
                                                help="writers held out for validation (files without a split)")),
    "--test-fraction": ("test_fraction", dict(type=float, default=0.1,
                                              help="writers held out for testing (never trained or validated on)")),
    "--data-seed": ("seed", dict(type=int, default=0, help="seed of the synthetic corpus and of the writer split")),
    "--draw-seed": ("draw_seed", dict(type=int, default=None,
                                      help="seed of the generated training lines only (synthetic and composed "
                                           "Omniglot lines; default: --data-seed): fresh lines of the same "
                                           "training writers, the held-out writers and validation unchanged")),
}


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,  # --resume may override only the flags written out (see _explicit_flags)
        description="Train a VRNN-GMM (or the RNN-GMM baseline) on handwriting.",
        formatter_class=HelpFormatter,
    )
    g = p.add_argument_group("data and output")
    g.add_argument("--data", action="append", metavar="SOURCE[:WEIGHT]",
                   help="'synthetic' or a file / folder of ink in any format read_ink reads (Omniglot .npz or raw "
                        ".zip, UJI, IAM, InkML, ndjson, json...); repeat it for a mixture, each with its weight: its "
                        "share of every epoch (default 1), e.g. --data synthetic:0.7 --data omniglot.npz:0.3")
    g.add_argument("--out", required=True, help="output directory (checkpoints, metrics.jsonl)")
    g.add_argument("--init-from", metavar="CHECKPOINT",
                   help="start from this saved model (its weights, config and normalizer) with a new optimizer")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (budget, cadence and lr flags may change)")
    for flag, (_, kw) in DATA_FLAGS.items():
        g.add_argument(flag, **kw)
    g = p.add_argument_group("model (with --resume: the checkpoint's; a different value is refused)")
    defaults = VRNNConfig().to_dict()
    for flag, (names, kw) in MODEL_FLAGS.items():
        g.add_argument(flag, default=None if flag in _DEFAULTS_FROM else defaults[names[0]], **kw)
    groups = add_option_flags(p)
    groups["run"].add_argument("--threads", type=int, help="torch CPU threads (default: cores / processes)")
    return p


def config_from_args(a: argparse.Namespace) -> VRNNConfig:
    values = {}
    for flag, (names, _) in MODEL_FLAGS.items():  # in table order: --z-features overrides --features
        if getattr(a, _dest(flag)) is not None or flag not in _DEFAULTS_FROM:
            values.update({name: getattr(a, _dest(flag)) for name in names})
    return VRNNConfig(**values)


def _explicit_flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Destinations of the options written on the command line (to know what --resume may change)."""
    given = set()
    for action in parser._actions:
        if any(a == s or a.startswith(s + "=") for a in argv for s in action.option_strings):
            given.add(action.dest)
    return given


def _check_model_flags(a: argparse.Namespace, given: set[str], config: dict, why: str) -> None:
    """Model flags written out must repeat ``config``'s values (resuming, or starting from a checkpoint)."""
    for flag, (names, _) in MODEL_FLAGS.items():
        if _dest(flag) not in given:
            continue
        for name in names:  # --features sets two fields: both must match
            if getattr(a, _dest(flag)) != config.get(name):
                raise TrainingError(f"{flag} cannot change {why} (the run's model has {name}={config.get(name)!r})")


def _init_model(path: str):
    """The model ``--init-from`` names, and what the card records about it."""
    try:
        base = load_model(path, device="cpu")
    except CheckpointError as e:
        raise TrainingError(f"--init-from: {e}") from None
    card = base.card or {}
    metrics = card.get("metrics", {})
    validated = (metrics.get("best_step") or -1) >= 0 and metrics.get("best_elapsed_s") is not None
    # a run that never validated saved its last weights: then its own steps and time
    return base, {"path": path, "model": base.config.model, "command": card.get("command"),
                  "steps": metrics["best_step"] if validated else card.get("steps"),
                  "elapsed_s": metrics["best_elapsed_s"] if validated else card.get("wall_time_s"),
                  "best_valid_elbo_per_point": metrics.get("best_valid_elbo_per_point"),
                  # the parent's own lineage, when it was itself continued from a checkpoint
                  **({"init_from": card["init_from"]} if isinstance(card.get("init_from"), dict) else {})}


def _check_resume_flags(a: argparse.Namespace, given: set[str], stored: dict) -> TrainOptions:
    """The resumed run's options; raises :class:`TrainingError` for a flag that would change the run."""
    config, data_args = stored["config"], stored["card"].get("data_args", {})
    _check_model_flags(a, given, config, "when resuming")
    for flag, (key, _) in DATA_FLAGS.items():
        if _dest(flag) in given and getattr(a, _dest(flag)) != data_args.get(key):
            raise TrainingError(f"{flag} cannot change when resuming (the run has {data_args.get(key)!r})")
    requested = options_from_args(a).to_dict()
    return resume_changes(TrainOptions.from_dict(stored["options"]), {k: requested[k] for k in given if k in requested})


def _install_stop_handlers(stop: threading.Event) -> dict:
    """Ctrl-C / SIGTERM ask to stop after the current step (a second Ctrl-C aborts); the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def ask_to_stop(signum, frame):
        if stop.is_set():  # a second Ctrl-C: stop right now
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this step (checkpointing; Ctrl-C again to abort)", file=sys.stderr)

    return {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}


def _prepare(a: argparse.Namespace, argv: list[str], parser, dist) -> Trainer:
    """Check the flags, load the data and build the trainer (raises DataError / TrainingError / ValueError)."""
    out = Path(a.out)
    if dist.is_main:
        try:  # fail now, not after minutes of preprocessing
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"--out {out}: cannot create the folder ({e.strerror or e})") from e
    resume = a.resume and (out / STATE_FILE).exists()
    if a.resume and not resume and dist.is_main:
        print(f"note: no checkpoint in {out}; starting a new run", file=sys.stderr)
    if not resume and (out / STATE_FILE).exists():
        raise TrainingError(f"{out} already holds a training run; pass --resume to continue it, or choose "
                            f"another --out")
    command = f"{PROG} {shlex.join(argv)}"
    override = base = None
    if a.init_from and resume:
        raise TrainingError("--init-from starts a new run; to continue the run in --out, pass --resume alone")
    given_data = None if a.data is None else _data_label([DataSource.parse(d) for d in a.data])
    if resume:
        _, stored = load_train_state(out)
        card = dict(stored["card"])
        if given_data is not None and given_data != card.get("data"):
            raise TrainingError(f"--data {given_data} differs from the run's data {card.get('data')}; resume with "
                                f"the same data (or leave --data out)")
        given = _explicit_flags(parser, argv)
        options = _check_resume_flags(a, given, stored)
        override = {k: v for k, v in options.to_dict().items() if k in given}
        card["resumed_with"] = [*card.get("resumed_with", []), command]
    elif a.data is None:
        raise DataError("--data is required (or --resume an existing run)")
    else:
        card = {"data": given_data, "data_sources": a.data,
                "data_args": {key: getattr(a, _dest(flag)) for flag, (key, _) in DATA_FLAGS.items()},
                "command": command}
        if a.init_from:
            base, card["init_from"] = _init_model(a.init_from)
            _check_model_flags(a, _explicit_flags(parser, argv), base.config.to_dict(), "with --init-from")
    mixture = load_mixture(card.get("data_sources") or [card["data"]], **card["data_args"])
    if dist.is_main:
        for src, w, c in zip(mixture.sources, mixture.weights, mixture.counts):
            share = f" (weight {w:.3f})" if mixture.mixed else ""
            print(f"data {src.spec}{share}: train {c['train_inks']:,} inks, valid {c['valid_inks']:,} inks",
                  file=sys.stderr)
        print(f"training on {describe(mixture.train)}; validating on {describe(mixture.valid)}", file=sys.stderr)
    if mixture.mixed:
        card["mixture"] = mixture.card()
    return Trainer(mixture.train, mixture.valid, config=config_from_args(a), options=options_from_args(a), out=out,
                   resume=resume, card=card, dist=dist, options_override=override, base_model=base,
                   sources=mixture.train_source if mixture.mixed else None,
                   weights=mixture.weights if mixture.mixed else None,
                   valid_sources=mixture.valid_source if mixture.mixed else None)


def _data_label(sources: list[DataSource]) -> str:
    """How the card names the data: the one source's spec, or ``"a:0.7 + b:0.3"`` for a mixture."""
    if len(sources) == 1 and sources[0].weight is None:
        return sources[0].spec
    return " + ".join(str(s) for s in sources)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    a = parser.parse_args(argv)
    dist = init_distributed()
    try:
        set_threads(a.threads, processes_here=dist.local_world)  # processes on one machine share its cores
        trainer = _prepare(a, argv, parser, dist)
    except (DataError, InkFormatError, TrainingError, ValueError) as e:  # ValueError: a bad size, from VRNNConfig
        dist.close()
        return fail(e)

    stop = threading.Event()
    previous = _install_stop_handlers(stop)
    try:
        trainer.run(stop_event=stop)
    except TrainingError as e:
        return fail(e, code=1)
    except KeyboardInterrupt:
        return fail("aborted; the last checkpoint is intact (continue with --resume)", code=130)
    except OSError as e:  # disk full, folder removed, permissions...
        return fail(f"cannot write the checkpoint in {a.out}: {e}", code=1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        dist.close()
    if dist.is_main:
        print(trainer.state.summary_text(trainer.out))
    return 130 if trainer.state.stop_reason == "cancelled" else 0


if __name__ == "__main__":
    sys.exit(main())
