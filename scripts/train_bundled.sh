#!/usr/bin/env bash
# The bundled models' recipe, one command: both models side by side (one CPU thread each),
# on the same data mixture and recipe, 150 minutes each, then copied into pretrained/.
#
#   bash scripts/train_bundled.sh            # OUT=runs/bundle MINUTES=150 by default
#   MODELS=vrnn MINUTES=120 bash scripts/train_bundled.sh   # one of them (the bundled VRNN's run)
#
# Data it reads (none of it is committed; ../shared/data beside this checkout):
# - the built-in synthetic generator (vrnn/synthetic.py; letter shapes from the
#   hershey-fonts package on PyPI), 20,000 lines, weight 0.45;
# - ../shared/data/omniglot/omniglot.npz: the sketch-rnn conversion of Omniglot (MIT,
#   Lake et al. 2015), public at https://github.com/hardmaru/sketch-rnn-datasets
#   (omniglot/omniglot.npz), weight 0.25, its own train split;
# - ../shared/data/omniglot/strokes_background_small1.zip: raw Omniglot strokes, public at
#   https://github.com/brendenlake/omniglot (python/strokes_background_small1.zip); its
#   Latin letters composed into lines per drawer (omniglot-lines:), weight 0.2;
# - ../shared/data/omniglot/strokes_background_small2.zip: raw Omniglot strokes, same
#   place (python/strokes_background_small2.zip), single characters, weight 0.1.
# Writers held out for validation and test in every source (README, "Data").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/bundle}
MINUTES=${MINUTES:-150}
MODELS=${MODELS:-vrnn rnn}
D=../shared/data/omniglot
for f in "$D/omniglot.npz" "$D/strokes_background_small1.zip" "$D/strokes_background_small2.zip"; do
  [ -f "$f" ] || { echo "error: $f is missing (see the comments at the top of this script)" >&2; exit 2; }
done
COMMON=(--data synthetic:0.45 --data "$D/omniglot.npz:0.25"
  --data "omniglot-lines:$D/strokes_background_small1.zip:0.2" --data "$D/strokes_background_small2.zip:0.1"
  --synthetic-lines 20000 --hidden 192 --mlp 192 --latent 16 --mixtures 20 --batch-size 32 --max-len 200
  --lr 2e-3 --seed 0 --threads 1 --eval-every 500 --patience 0 --minutes "$MINUTES" --checkpoint-every 300
  --no-progress)
# The VRNN's prior and encoder are 64 wide (the decoder keeps the baseline's 192) and phi_z
# has 64 features: narrow latent MLPs keep its step near the baseline's, while a wide phi_z
# keeps the latent in use (phi_z 16 halved the KL; docs/kl_study.md).
VRNN_ONLY=(--latent-mlp 64 --z-features 64 --free-bits 0.02 --free-bits-mode total --kl-warmup-steps 2000)
mkdir -p "$OUT"
declare -A PID STATUS
for m in $MODELS; do
  case "$m" in
    vrnn) python -m vrnn.train --model vrnn "${COMMON[@]}" "${VRNN_ONLY[@]}" --out "$OUT/vrnn" > "$OUT/vrnn.log" 2>&1 & ;;
    rnn) python -m vrnn.train --model rnn "${COMMON[@]}" --out "$OUT/rnn" > "$OUT/rnn.log" 2>&1 & ;;
    *) echo "error: MODELS may name vrnn and rnn, not '$m'" >&2; exit 2 ;;
  esac
  PID[$m]=$!
done
FAILED=0
for m in $MODELS; do
  STATUS[$m]=0
  wait "${PID[$m]}" || STATUS[$m]=$?
  [ "${STATUS[$m]}" -eq 0 ] || FAILED=1
done
if [ "$FAILED" -ne 0 ]; then
  echo "error: training failed ($(for m in $MODELS; do printf '%s exit %s; ' "$m" "${STATUS[$m]}"; done)see $OUT/*.log); pretrained/ is unchanged" >&2
  exit 1
fi
for m in $MODELS; do
  mkdir -p "pretrained/$m"
  cp "$OUT/$m/config.json" "$OUT/$m/model.safetensors" "$OUT/$m/metrics.jsonl" "pretrained/$m/"
done
echo "bundled: pretrained/vrnn pretrained/rnn (logs in $OUT); next: python scripts/results_table.py"
