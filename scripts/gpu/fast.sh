#!/usr/bin/env bash
# Issue 44's GPU figures in one device command (prepare here as for scripts/gpu/fashion_mnist.sh:
# bash scripts/gpu/build.sh 2.11.0 && bash scripts/gpu/fashion_mnist.sh --stage; carry gpu/):
# 1. recipes/fashion-mnist-gpu-fast.toml, seeds 0-4, one at a time: training seconds (the sum of
#    metrics.jsonl's per-epoch seconds), process wall seconds, test accuracy with and without TTA;
#    the mean over the seeds against the targets (>= 94.0% test, <= 5 s of training);
# 2. seed 0 again with train.loader = "host", for what the resident loader buys;
# 3. the checklist of that recipe (default plan), FAST_TRIALS_PER_GPU trials at once (default 6),
#    stopped after FAST_CHECKLIST_SECONDS (default 300): its wall time if it finished.
# Everything is printed and written under $OUT (fast.log; the runs' result.json and metrics).
# Usage on the device: OUT=... bash scripts/gpu/fast.sh gpu/darkmagic [--set k=v ...]
# Smoke test on this CPU (1 epoch on 1200 images; checks the script, not the figures):
#   CHECK_DEVICE=cpu FAST_CHECKLIST_SECONDS=60 OUT=/tmp/fast bash scripts/gpu/fast.sh target/release/darkmagic \
#       --set train.epochs=1 --set data.train_subset=1200 --set data.test_subset=200 --set train.batch_size=128
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-gpu/darkmagic}
shift
device=${CHECK_DEVICE:-cuda}
source scripts/gpu/env.sh
out=${OUT:?set OUT to the folder whose files come back}
data=gpu/data/fashion-mnist
[ -d "$data" ] || data=/usr/share/datasets/fashion-mnist
recipe=recipes/fashion-mnist-gpu-fast.toml
flags=(--set "data.path=\"$data\"" --set "train.device=\"$device\"" "$@")
exec > >(tee "$out/fast.log") 2>&1
# The sum of a run's per-epoch seconds, and its test accuracies.
report() {
    "$python" - "$1" <<'PY'
import json, sys
run = sys.argv[1]
seconds = sum(json.loads(l)["seconds"] for l in open(f"{run}/metrics.jsonl"))
r = json.load(open(f"{run}/result.json"))
print(f"{seconds:.2f} {r.get('test_acc', float('nan')):.4f} {r.get('test_acc_tta', float('nan')):.4f}")
PY
}
echo "== 1. $recipe, seeds 0-4 (training s, test, test with TTA, wall s)"
rows=()
for seed in 0 1 2 3 4; do
    run=$out/seed-$seed
    start=$(date +%s.%N)
    "$bin" train --recipe "$recipe" "${flags[@]}" --set seed=$seed --run-dir "$run" > "$run.log" 2>&1 || { echo "seed $seed failed:"; tail -5 "$run.log"; continue; }
    wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
    row="$(report "$run") $wall"
    rows+=("$row")
    echo "seed $seed: $row"
done
printf '%s\n' "${rows[@]}" | awk '{t+=$1; a+=$2; b+=$3; n++} END {if (n) printf "mean of %d: training %.2f s, test %.2f%%, with TTA %.2f%% (targets: <= 5 s, >= 94.0%%)\n", n, t/n, 100*a/n, 100*b/n}'
echo "== 2. seed 0 with batches built on the host (train.loader = \"host\")"
run=$out/seed-0-host
"$bin" train --recipe "$recipe" "${flags[@]}" --set 'train.loader="host"' --run-dir "$run" > "$run.log" 2>&1 && echo "host loader: $(report "$run")"
echo "== 3. the checklist of $recipe, ${FAST_TRIALS_PER_GPU:-6} trials at once, at most ${FAST_CHECKLIST_SECONDS:-300} s"
par=(--parallel "${FAST_TRIALS_PER_GPU:-6}")
[ "$device" = cuda ] && par=(--trials-per-gpu "${FAST_TRIALS_PER_GPU:-6}")
start=$(date +%s)
timeout --signal=INT "${FAST_CHECKLIST_SECONDS:-300}" "$bin" checklist --recipe "$recipe" --out "$out/checklist" "${flags[@]}" "${par[@]}" > "$out/checklist.log" 2>&1
status=$?
echo "checklist exit status $status after $(( $(date +%s) - start )) s ($([ $status = 0 ] && echo finished || echo 'stopped or failed'))"
tail -3 "$out/checklist.log"
find "$out" -name '*.safetensors' -delete
[ -f "$out/checklist/summary.md" ] && sed -n '1,12p' "$out/checklist/summary.md"
