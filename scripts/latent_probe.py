"""What do the VRNN's busiest latent dimensions say? Correlates each one's whitened
departure of the posterior from the prior, ``(mu_q - mu_p) / sigma_p``, with what the
pen does at that step, over held-out synthetic lines (README, "What we see: Latent").

- ``|departure|`` against: the step's KL, its NLL, "first point after a pen lift", the
  step length (in ink heights) and the turn angle;
- the signed departure by turn direction (y points down: a positive turn is clockwise on
  the page), at pen-down steps that follow a pen-down step.

    python scripts/latent_probe.py [--model pretrained/vrnn] [--lines 100] [--dims 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vrnn  # noqa: E402


def step_table(model, inks) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per step ``t >= 2`` of every ink: departures ``(N, Z)`` and the pen's features."""
    deps, feats = [], {k: [] for k in ("kl", "nll", "after_lift", "step_len", "turn", "pen_down_run")}
    for ink in inks:
        tr = model.trace(ink)
        d = (tr.post_mu - tr.prior_mu) / tr.prior_sigma
        off = tr.offsets
        ang = np.arctan2(off[:, 1], off[:, 0])
        for t in range(2, len(off)):
            deps.append(d[t])
            turn = (ang[t] - ang[t - 1] + np.pi) % (2 * np.pi) - np.pi
            feats["kl"].append(tr.kl[t])
            feats["nll"].append(tr.nll[t])
            feats["after_lift"].append(float(off[t - 1, 2] > 0.5))
            feats["step_len"].append(np.hypot(*off[t, :2]) / tr.scale)
            feats["turn"].append(turn)
            feats["pen_down_run"].append(float(off[t - 1, 2] < 0.5 and off[t - 2, 2] < 0.5))
    return np.asarray(deps), {k: np.asarray(v) for k, v in feats.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--lines", type=int, default=100, help="held-out synthetic test lines")
    ap.add_argument("--dims", type=int, default=2, help="how many of the busiest dimensions")
    a = ap.parse_args()
    model = vrnn.load_model(a.model, device="cpu")
    if not model.latent_size:
        raise SystemExit("the RNN-GMM has no latent variables")
    deps, f = step_table(model, vrnn.synthetic_inks(a.lines, seed=0, split="test"))
    busiest = np.argsort(-np.mean(np.abs(deps), 0))[: a.dims]
    print(f"{len(deps):,} steps of {a.lines} held-out synthetic lines")
    for k in busiest:
        dep = deps[:, k]
        corr = {n: np.corrcoef(np.abs(dep), f[n])[0, 1] for n in ("kl", "nll", "after_lift", "step_len")}
        corr["|turn|"] = np.corrcoef(np.abs(dep), np.abs(f["turn"]))[0, 1]
        print(f"\nz{k}: mean |departure| {np.mean(np.abs(dep)):.2f} prior sigmas; |departure| correlates with "
              + ", ".join(f"{n} {v:+.2f}" for n, v in corr.items()))
        sel = f["pen_down_run"] > 0
        edges = np.radians(np.arange(-180, 181, 45))
        cells = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            m = sel & (f["turn"] >= lo) & (f["turn"] < hi)
            cells.append(f"{np.degrees(lo):+.0f}..{np.degrees(hi):+.0f}: {dep[m].mean():+.2f} (n {m.sum()})")
        print("   mean departure by turn (degrees, + clockwise): " + "; ".join(cells))


if __name__ == "__main__":
    main()
