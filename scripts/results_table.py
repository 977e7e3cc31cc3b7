"""Rebuild the README's results tables for the bundled models (or any two checkpoints).

For the VRNN and the RNN-GMM, side by side (one process each), on

- held-out synthetic writers (the generator's ``test`` split),
- the Omniglot sketch-rnn ``test`` split (``../shared/data/omniglot/omniglot.npz``),
- the real UJI characters (``../shared/data/uji``, never trained on),

it runs ``python -m vrnn.evaluate`` with IWAE(K) and the particle filter's bound SMC(P)
(the RNN-GMM's rows are its exact log-likelihood), plus the continuation benchmark on held-out synthetic lines, at
temperature 1 (the model's own distribution) and at the app's default 0.8. It writes
one JSON per model and data set to ``results/``, records them in each model's card
(``card["evaluation"]``; the weights and their checksum are untouched) and prints the
Markdown tables the README shows.

    python scripts/results_table.py [--vrnn pretrained/vrnn] [--rnn pretrained/rnn] [-k 100] [-p 100]

The bold number of a row is the larger of the VRNN's IWAE and the baseline's exact
log-likelihood (the README's bar); the SMC column says how much of the VRNN's
likelihood a tighter bound finds beyond it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = {  # name: (caption, evaluate arguments); files only when present
    "synthetic-test": ("synthetic, held-out writers", ["--data", "synthetic"]),
    "omniglot-test": ("Omniglot `omniglot.npz` test split (real, mostly mouse)",
                      ["--data", str(DATA / "omniglot" / "omniglot.npz"), "--split", "test"]),
    "uji": ("UJI Pen Characters v2 (real, never trained on)", ["--data", str(DATA / "uji")]),
    # the 4 Latin drawers the writer hold-out keeps out of training (all land in "valid":
    # they picked the best checkpoint, nothing was trained on them), their letters composed
    # into lines: real printed hands for the continuation benchmark
    "omniglot-lines-valid": ("Omniglot Latin lines of the 4 held-out drawers (real, validation only)",
                             ["--data", f"omniglot-lines:{DATA / 'omniglot' / 'strokes_background_small1.zip'}",
                              "--split", "valid", "--synthetic-lines", "1000"]),
}
CONTINUATION_SETS = ("synthetic-test", "omniglot-lines-valid")  # lines with writer ids


def available() -> dict:
    return {k: v for k, v in SETS.items()
            if k == "synthetic-test" or Path(v[1][1].removeprefix("omniglot-lines:")).exists()}


TEMPERATURES = ("1.0", "0.8")  # the continuation benchmark's: the model's own distribution, the app's default
ADAPT = ("0", "30")  # and at each: the model as trained, and a copy adapted to each prefix (the app's "Adapt")


def evaluate_model(model_dir: str, k: int, lines: int, continuation: int, particles: int = 0) -> dict:
    """Every data set for one model, in order, in one worker process per call."""
    out = {}
    for name, (_, args) in available().items():
        extra = ["--synthetic-lines", str(lines)] if name == "synthetic-test" else []
        if name in CONTINUATION_SETS and continuation:
            extra += ["--continuation", str(continuation), "--temperature", *TEMPERATURES, "--adapt", *ADAPT]
        cmd = [sys.executable, "-m", "vrnn.evaluate", "--model", model_dir, *args, *extra,
               "--importance-samples", str(k), "--particles", str(particles), "--device", "cpu", "--json"]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: {r.stderr.strip()}")
        out[name] = json.loads(r.stdout)
    return out


def record_in_card(model_dir: str, results: dict) -> None:
    """``card["evaluation"]``: per data set, the numbers the README's tables show."""
    path = Path(model_dir) / "config.json"
    meta = json.loads(path.read_text())
    keep = ("sequences", "points", "elbo_per_point", "iwae_per_point", "importance_samples", "smc_per_point",
            "particles", "resampled_per_sequence", "kl_per_point",
            "kl_per_dim", "active_units", "informative_units", "continuation", "continuation_by_temperature")
    meta["card"] = meta.get("card") or {}
    meta["card"]["evaluation"] = {name: {k: r[k] for k in keep if k in r} | {"data": r["data"], "split": r["split"]}
                                  for name, r in results.items()}
    backfill_best_time(Path(model_dir), meta["card"])
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(path)


def backfill_best_time(model_dir: Path, card: dict) -> None:
    """Cards written before ``metrics.best_elapsed_s`` existed get it from the run's own log: the
    wall-clock time of the validation record at ``best_step`` in ``metrics.jsonl``."""
    metrics = card.get("metrics") or {}
    log = model_dir / "metrics.jsonl"
    if metrics.get("best_elapsed_s") is not None or "best_step" not in metrics or not log.exists():
        return
    with open(log, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") == "valid" and rec.get("step") == metrics["best_step"] and "elapsed_s" in rec:
                metrics["best_elapsed_s"] = round(float(rec["elapsed_s"]), 1)


def tables(v: dict, r: dict, k: int) -> str:
    p = v["synthetic-test"].get("particles")
    smc = f" VRNN SMC (P={p}) |" if p else ""
    rows = [f"| data | inks | points | VRNN ELBO | VRNN IWAE (K={k}) |{smc} RNN-GMM log-lik |",
            "|---|---|---|---|---|---|" + ("---|" if p else "")]
    for name, (caption, _) in available().items():
        a, b = v[name], r[name]
        best = max(a["iwae_per_point"], b["iwae_per_point"])
        cell = lambda x: f"**{x:.3f}**" if x == best else f"{x:.3f}"  # noqa: E731
        smc_cell = f" {a['smc_per_point']:.3f} |" if p else ""
        rows.append(f"| {caption} | {a['sequences']} | {a['points']:,} | {a['elbo_per_point']:.3f} | "
                    f"{cell(a['iwae_per_point'])} |{smc_cell} {cell(b['iwae_per_point'])} |")
    syn = v["synthetic-test"]
    rows += ["", f"VRNN latent on held-out synthetic writers: KL {syn['kl_per_point']:.3f} nats/point, "
             f"{syn['active_units']} of {len(syn['kl_per_dim'])} units active (Burda et al.), "
             f"{syn.get('informative_units', '?')} informative (KL > 0.01 nats/point); KL per dimension "
             + ", ".join(f"{x:.3f}" for x in sorted(syn["kl_per_dim"], reverse=True))]
    sets = [n for n in CONTINUATION_SETS if n in v and "continuation" in v[n]]
    if sets:
        rows += ["", "| continuation benchmark | model | temperature | adapted to the prefix | lines | "
                 "size ratio (median, IQR) | style score | same-writer oracle | chance |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for name in sets:
            for label, res in (("VRNN-GMM", v), ("RNN-GMM", r)):
                s = res[name]
                for c in s.get("continuation_by_temperature") or [s["continuation"]]:
                    lo, hi = c["size_ratio_iqr"]
                    adapted = f"{c['adapt_steps']} steps" if c.get("adapt_steps") else "no"
                    rows.append(f"| {SETS[name][0].split(' (')[0]} | {label} | {c.get('temperature', 1.0):g} | "
                                f"{adapted} | {c['lines']} | {c['size_ratio_median']:.2f} ({lo:.2f}-{hi:.2f}) | "
                                f"{c['style_score']:.3f} | {c['oracle_score']:.3f} | {c['chance_score']:.3f} |")
        rows += feature_rows(v, r, sets)
    return "\n".join(rows)


def run_label(c: dict) -> str:
    """``0.8`` or, for a run adapted to each prefix, ``0.8 adapted``."""
    return f"{c.get('temperature', 1.0):g}" + (" adapted" if c.get("adapt_steps") else "")


def feature_rows(v: dict, r: dict, sets: list[str]) -> list[str]:
    """Per style feature: each model's score in every benchmark run (temperature, adapted or
    not), the references (same-writer oracle, the line's own first half, chance) and the
    VRNN's drift in the runs at the last temperature (the app's), in standard deviations of the
    true second halves."""
    runs = lambda res, name: res[name].get("continuation_by_temperature") or [res[name]["continuation"]]  # noqa: E731
    rows = []
    for name in sets:
        vr, rr = runs(v, name), runs(r, name)
        if not all("features" in c for c in vr + rr):
            continue
        temps = " / ".join(run_label(c) for c in vr)
        last = [c for c in vr if c.get("temperature", 1.0) == vr[-1].get("temperature", 1.0)]  # the app's temperature
        head = (f"| {SETS[name][0].split(' (')[0]}: feature | VRNN-GMM (T {temps}) | RNN-GMM (T {temps}) | "
                f"oracle | own first half | chance | VRNN drift (sd, T {' / '.join(run_label(c) for c in last)}) |")
        rows += ["", head, "|---|---|---|---|---|---|---|"]
        overall = {"continuation": "style_score", "oracle": "oracle_score", "prefix": "prefix_score",
                   "chance": "chance_score"}
        both = lambda cs, key: " / ".join(f"{c[key]:.3f}" for c in cs)  # noqa: E731
        if all("prefix_score" in c for c in vr):
            rows.append(f"| all six | {both(vr, overall['continuation'])} | {both(rr, overall['continuation'])} | "
                        f"{vr[0]['oracle_score']:.3f} | {vr[0]['prefix_score']:.3f} | {vr[0]['chance_score']:.3f} | |")
        for feat in vr[0]["features"]:
            fv = [c["features"][feat] for c in vr]
            fr = [c["features"][feat] for c in rr]
            rows.append(f"| {feat} | {both(fv, 'continuation')} | {both(fr, 'continuation')} | {fv[0]['oracle']:.3f} | "
                        f"{fv[0]['prefix']:.3f} | {fv[0]['chance']:.3f} | "
                        + " / ".join(f"{c['features'][feat]['bias']:+.2f}" for c in last) + " |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vrnn", default=str(ROOT / "pretrained" / "vrnn"))
    ap.add_argument("--rnn", default=str(ROOT / "pretrained" / "rnn"))
    ap.add_argument("-k", "--importance-samples", type=int, default=100)
    ap.add_argument("-p", "--particles", type=int, default=100, help="P of the VRNN's SMC bound (0: off)")
    ap.add_argument("--lines", type=int, default=100, help="held-out synthetic lines")
    ap.add_argument("--continuation", type=int, default=160, help="continuation benchmark lines (0: off)")
    ap.add_argument("--out", default=str(ROOT / "results"))
    ap.add_argument("--no-card", action="store_true", help="leave the model cards as they are")
    ap.add_argument("--tables-only", action="store_true", help="print the tables from the results already in --out")
    ap.add_argument("--only", choices=("vrnn", "rnn"),
                    help="evaluate this model only; the other's results are read from --out (it must hold them)")
    ap.add_argument("--record-card", action="store_true",
                    help="with --tables-only: also write the saved results into the model cards")
    a = ap.parse_args()

    def read_saved(m: str) -> dict:
        return {name: json.loads((Path(a.out) / f"{m}-{name}.json").read_text()) for name in available()}

    if a.tables_only:
        saved = {m: read_saved(m) for m in ("vrnn", "rnn")}
        if a.record_card:
            for m, d in (("vrnn", a.vrnn), ("rnn", a.rnn)):
                record_in_card(str(Path(d).resolve()), saved[m])
        k = saved["vrnn"]["synthetic-test"].get("importance_samples", a.importance_samples)  # as computed
        print(tables(saved["vrnn"], saved["rnn"], k))
        return
    if a.importance_samples < 1:
        ap.error("-k must be at least 1 (the tables show IWAE)")
    a.vrnn, a.rnn = str(Path(a.vrnn).resolve()), str(Path(a.rnn).resolve())
    todo = [(m, d) for m, d in (("vrnn", a.vrnn), ("rnn", a.rnn)) if a.only in (None, m)]
    try:
        kept = {m: read_saved(m) for m in ("vrnn", "rnn") if a.only not in (None, m)}
    except FileNotFoundError as e:
        raise SystemExit(f"error: --only {a.only} reads the other model's results from --out: {e}") from None
    with ThreadPoolExecutor(2) as pool:
        jobs = {m: pool.submit(evaluate_model, d, a.importance_samples, a.lines, a.continuation,
                               a.particles if m == "vrnn" else 0) for m, d in todo}
        res = {m: j.result() for m, j in jobs.items()}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for m, per_set in res.items():
        for name, r in per_set.items():
            (out / f"{m}-{name}.json").write_text(json.dumps(r, indent=2) + "\n")
        if not a.no_card:
            record_in_card(a.vrnn if m == "vrnn" else a.rnn, per_set)
    res.update(kept)
    print(tables(res["vrnn"], res["rnn"], a.importance_samples))


if __name__ == "__main__":
    main()
