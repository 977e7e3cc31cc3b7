"""Evaluate a checkpoint: log-likelihood bounds in nats, per point and per sequence.

Command line::

    python -m vrnn.evaluate --model runs/vrnn --data synthetic --importance-samples 100
    python -m vrnn.evaluate --model pretrained/rnn --data ../shared/data/uji --json

- ELBO: the evidence lower bound with the analytic KL.
- IWAE: the importance-weighted bound with K samples (Burda et al. 2016); it is >= the
  ELBO and tightens towards ``log p(x)`` as K grows.
- SMC (``--particles P``): the log of a particle filter's likelihood estimate with P
  particles proposed from ``q`` and resampled when they degenerate (the FIVO bound,
  Maddison et al. 2017); a lower bound on ``log p(x)`` in expectation, like the IWAE, and
  far tighter on long inks, where the IWAE of a filtering ``q`` barely leaves the ELBO.
- The RNN-GMM baseline has no latent variables: every row holds its exact
  log-likelihood, so VRNN and RNN-GMM numbers sit on one scale (higher is better).

``--data synthetic`` evaluates on the generator's held-out ``test`` writers. For files,
``--split all`` (the default) takes every ink; see :func:`vrnn.datasets.load_eval_inks`.

``--continuation N`` adds the continuation benchmark (:mod:`vrnn.style`) on ``N`` held-out
lines: each is split at its middle pen lift, the model continues the first half, and the
continuation's size and style are compared with the writer's true second half (size
ratio, style score against a same-writer oracle and chance). With ``--data synthetic`` the
lines are random-text lines by the ``test`` writers, 4 each (2 for ``N < 8``, more when
``N`` exceeds 4 per writer); with files, groups of 2 to 4 lines by one writer, from the
writers that have at least two in the evaluated split::

    python -m vrnn.evaluate --model pretrained/rnn --data synthetic --continuation 80

``--adapt 0 30`` runs it twice at every temperature: with the model as trained and with a
copy fine-tuned for 30 steps on each prefix before continuing it (dynamic evaluation,
:meth:`vrnn.inference.Inference.adapted`).
"""

from __future__ import annotations

import argparse
import json
import sys

from .cli import HelpFormatter, fail, quiet_openmp

# Before torch loads (through the checkpoint loader): a CLI's idle OpenMP threads sleep (see vrnn.cli).
quiet_openmp(__name__ == "__main__")

from .checkpoint import CheckpointError  # noqa: E402
from .datasets import DataError, describe, load_eval_inks  # noqa: E402
from .inference import MAX_ADAPT_STEPS  # noqa: E402
from .ink import InkFormatError  # noqa: E402
from .model import load_model  # noqa: E402
from .style import continuation_benchmark, lines_by_writer, lines_per_writer, synthetic_benchmark_lines  # noqa: E402


def evaluate_checkpoint(model_dir: str | None, data: str, *, importance_samples: int = 0, split: str | None = None,
                        synthetic_lines: int = 200, seed: int = 0, data_seed: int = 0, device: str | None = None,
                        valid_fraction: float = 0.1, test_fraction: float = 0.1,
                        continuation: int = 0, temperatures: tuple[float, ...] = (1.0,),
                        adapt: tuple[int, ...] = (0,), z_mode: str = "sample", particles: int = 0) -> dict:
    """Load a checkpoint, load the data and return :meth:`model.evaluate`'s numbers plus what was evaluated.

    ``valid_fraction`` / ``test_fraction``: the writer hold-out of training (the same values
    give the same held-out writers; see :func:`vrnn.datasets.holdout_split`).
    ``continuation``: lines for the continuation benchmark (0: none); its numbers go under
    ``"continuation"`` (:meth:`vrnn.style.BenchmarkResult.as_dict`), at the first of
    ``temperatures`` and of ``adapt`` (fine-tuning steps on each prefix); with more than one
    run, ``"continuation_by_temperature"`` lists them all, temperature by temperature.
    ``z_mode``: the continuations' ``z``, a prior sample (as trained) or the prior mean.
    """
    model = load_model(model_dir, device=device)
    inks = load_eval_inks(data, split=split, seed=data_seed, synthetic_lines=synthetic_lines,
                          valid_fraction=valid_fraction, test_fraction=test_fraction)
    result = model.evaluate(inks, importance_samples=importance_samples, seed=seed, particles=particles)
    eff_split = split or ("test" if data == "synthetic" else "all")
    out = {
        "checkpoint": model_dir if model_dir is not None else "pretrained (bundled)",
        "data": data,
        "split": eff_split,
        "inks": describe(inks),
        **result,
    }
    if continuation:
        runs = [continuation_lines_benchmark(model, data, inks, continuation, seed=seed, temperature=t, adapt=n,
                                             z_mode=z_mode)
                for t in temperatures for n in adapt]
        out["continuation"] = runs[0]
        if len(runs) > 1:
            out["continuation_by_temperature"] = runs
    return out


def continuation_lines_benchmark(model, data: str, inks: list, lines: int, *, seed: int = 0,
                                 temperature: float = 1.0, adapt: int = 0, z_mode: str = "sample") -> dict:
    """The continuation benchmark on ``lines`` held-out lines (module docstring)."""
    if data == "synthetic":
        bench_inks = synthetic_benchmark_lines(lines)
    else:  # as many lines by each writer as it takes (real sets hold out few writers), at least 4
        writers = {i.writer for i in inks if i.writer is not None and len(i.strokes) > 1}
        bench_inks = lines_by_writer(inks, lines, per_writer=lines_per_writer(lines, len(writers)))
    if len({ink.writer for ink in bench_inks}) < 2:
        raise DataError(f"{data}: the continuation benchmark needs lines by at least two writers "
                        "with two or more multi-stroke lines each")
    return continuation_benchmark(model, bench_inks, seed=seed, temperature=temperature, adapt=adapt,
                                  z_mode=z_mode).as_dict()


def format_table(r: dict) -> str:
    """A small plain-text table of an :func:`evaluate_checkpoint` result."""
    kind = "VRNN-GMM" if r.get("model") == "vrnn" else "RNN-GMM (exact log-likelihood)"
    lines = [
        f"model   {r['checkpoint']} ({kind})",
        f"data    {r['data']} (split {r['split']}: {r['inks']}; {r['points']:,} scored points)",
        "",
        f"{'bound (nats, higher is better)':<34}{'per point':>12}{'per sequence':>16}",
        f"{'ELBO':<34}{r['elbo_per_point']:>12.4f}{r['elbo_per_sequence']:>16.2f}",
    ]
    if "iwae_per_point" in r:
        label = f"IWAE (K={r['importance_samples']})"
        lines.append(f"{label:<34}{r['iwae_per_point']:>12.4f}{r['iwae_per_sequence']:>16.2f}")
    if "smc_per_point" in r:
        label = f"SMC (P={r['particles']})"
        lines.append(f"{label:<34}{r['smc_per_point']:>12.4f}{r['smc_per_sequence']:>16.2f}")
        if r.get("model") == "vrnn":
            lines.append(f"{'    resampled per ink':<34}{r['resampled_per_sequence']:>12.1f}")
    if r.get("model") == "vrnn" and "kl_per_point" in r:
        lines.append(f"{'KL term':<34}{r['kl_per_point']:>12.4f}")
    if r.get("kl_per_dim"):
        lines.append(f"{'KL per dimension':<34}" + " ".join(f"{v:.3f}" for v in r["kl_per_dim"]))
        lines.append(f"{'active units (Cov > 0.01)':<34}{r['active_units']:>12d} of {len(r['kl_per_dim'])}")
        if "informative_units" in r:
            lines.append(f"{'informative units (KL > 0.01)':<34}{r['informative_units']:>12d} of {len(r['kl_per_dim'])}")
    for c in r.get("continuation_by_temperature") or ([r["continuation"]] if "continuation" in r else []):
        lo, hi = c["size_ratio_iqr"]
        lines += [
            "",
            f"continuation benchmark ({c['lines']} held-out lines, split at the middle pen lift, "
            f"temperature {c.get('temperature', 1.0):g}"
            + (f", adapted {c['adapt_steps']} steps to each prefix" if c.get("adapt_steps") else "")
            + (", z at the prior mean)" if c.get("z_mode") == "mean" else ")"),
            f"{'size ratio (continuation / prefix)':<34}{c['size_ratio_median']:>12.3f}  (IQR {lo:.2f}-{hi:.2f}; 1 is right)",
            f"{'style score (0.5: chance)':<34}{c['style_score']:>12.3f}",
            f"{'  same-writer oracle':<34}{c['oracle_score']:>12.3f}",
            f"{'  another writer (chance)':<34}{c['chance_score']:>12.3f}",
        ]
        if "prefix_score" in c:
            lines.append(f"{'  its own first half (prefix)':<34}{c['prefix_score']:>12.3f}")
        if c.get("features"):
            lines.append(f"{'  per feature':<22}{'continuation':>13}{'oracle':>8}{'chance':>8}{'prefix':>8}"
                         f"{'bias (sd)':>11}")
            for name, f in c["features"].items():
                lines.append(f"{'    ' + name:<22}{f['continuation']:>13.3f}{f['oracle']:>8.3f}{f['chance']:>8.3f}"
                             f"{f['prefix']:>8.3f}{f['bias']:>+11.2f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vrnn.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter, allow_abbrev=False)
    p.add_argument("--model", help="checkpoint folder (default: the bundled VRNN in pretrained/vrnn)")
    p.add_argument("--data", required=True, help="'synthetic' or a file / folder of ink files")
    p.add_argument("--importance-samples", "-k", type=int, default=0, help="K for the IWAE bound (0: ELBO only)")
    p.add_argument("--particles", "-p", type=int, default=0,
                   help="P for the particle filter's (SMC / FIVO) bound (0: off)")
    p.add_argument("--split", choices=("all", "train", "valid", "test"),
                   help="which inks (default: 'test' writers for synthetic, every ink of files)")
    p.add_argument("--synthetic-lines", type=int, default=200, help="lines drawn from the synthetic corpus")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent samples")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic corpus and of the writer split")
    p.add_argument("--valid-fraction", type=float, default=0.1, help="the training run's --valid-fraction (files)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="the training run's --test-fraction (files)")
    p.add_argument("--continuation", type=int, default=0, metavar="N",
                   help="also run the continuation benchmark on N held-out lines (0: off)")
    p.add_argument("--temperature", type=float, nargs="+", default=[1.0], metavar="T",
                   help="sampling temperature(s) of the continuation benchmark (1: the model's own distribution; "
                        "the app's default is 0.8)")
    p.add_argument("--adapt", type=int, nargs="+", default=[0], metavar="STEPS",
                   help="continuation benchmark: fine-tune a copy of the model on each prefix for STEPS steps "
                        "before continuing it (dynamic evaluation; 0: the model as trained); several: one run each")
    p.add_argument("--z-mode", choices=("sample", "mean"), default="sample",
                   help="continuation benchmark: z drawn from the prior (the VRNN as trained) or at the prior "
                        "mean (the app's 'prior mean')")
    p.add_argument("--device", help="cpu, cuda ... (default: CUDA when available)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.importance_samples < 0:
        return fail("--importance-samples must be >= 0")
    if a.particles < 0:
        return fail("--particles must be >= 0")
    if a.continuation < 0 or 0 < a.continuation < 4:
        return fail("--continuation needs at least 4 lines: two by each of two writers (0: off)")
    if any(not (0.0 < t <= 10.0) for t in a.temperature):
        return fail("--temperature must be in (0, 10]")
    if any(not (0 <= n <= MAX_ADAPT_STEPS) for n in a.adapt):
        return fail(f"--adapt must be between 0 and {MAX_ADAPT_STEPS} steps")
    try:
        r = evaluate_checkpoint(a.model, a.data, importance_samples=a.importance_samples, split=a.split,
                                synthetic_lines=a.synthetic_lines, seed=a.seed, data_seed=a.data_seed, device=a.device,
                                valid_fraction=a.valid_fraction, test_fraction=a.test_fraction,
                                continuation=a.continuation, temperatures=tuple(a.temperature),
                                adapt=tuple(a.adapt), z_mode=a.z_mode, particles=a.particles)
    except (DataError, InkFormatError, CheckpointError) as e:
        return fail(e)
    print(json.dumps(r, indent=2) if a.json else format_table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
