#!/usr/bin/env bash
# Rebuild the README's results table: both bundled models on held-out synthetic writers
# and on the real UJI characters in ../shared/data/uji (when present). JSON to results/.
set -euo pipefail
cd "$(dirname "$0")/.."
K=${K:-100}
LINES=${LINES:-100}
mkdir -p results
for m in vrnn rnn; do
  python -m vrnn.evaluate --model pretrained/$m --data synthetic --synthetic-lines "$LINES" \
    --importance-samples "$K" --json > results/$m-synthetic-test.json
  if [ -d ../shared/data/uji ]; then
    python -m vrnn.evaluate --model pretrained/$m --data ../shared/data/uji \
      --importance-samples "$K" --json > results/$m-uji.json
  fi
done
python - <<'PY'
import json, pathlib
rows = []
for data, name in (("synthetic-test", "synthetic, held-out writers"), ("uji", "UJI Pen Characters v2 (real)")):
    try:
        v = json.loads(pathlib.Path(f"results/vrnn-{data}.json").read_text())
        r = json.loads(pathlib.Path(f"results/rnn-{data}.json").read_text())
    except FileNotFoundError:
        continue
    rows.append(f"| {name} | {v['sequences']} | {v['points']:,} | {v['elbo_per_point']:.3f} | {v['iwae_per_point']:.3f} | {r['iwae_per_point']:.3f} |")
print("| data | inks | points | VRNN ELBO | VRNN IWAE (K=%d) | RNN-GMM log-lik |" % json.loads(pathlib.Path("results/vrnn-synthetic-test.json").read_text()).get("importance_samples", 0))
print("|---|---|---|---|---|---|")
print("\n".join(rows))
PY
