#!/usr/bin/env bash
# Issue 44's CPU figures: recipes/fashion-mnist-cpu-fast.toml with darkmagic against the same
# recipe as a PyTorch loop (bench/fashion_mnist_fast.py), in one run.
# 1. Time: seed 0 of each, one after the other on all the cores given (--threads, default 2),
#    nothing else running; the wall time of the whole process (loading, training, test).
# 2. Accuracy: darkmagic on seeds 1..S-1 (default S = 5), two processes at once with one thread
#    each (the figures do not depend on the thread count beyond float rounding); the test
#    accuracy of every seed (with flip + translate TTA, darkmagic's result.json test_acc_tta)
#    and their mean.
# Usage: bench/fashion_mnist_fast.sh [--seeds S] [--threads T] [--out DIR] [--set KEY=VALUE]...
# (--set goes to darkmagic; the PyTorch loop gets the recipe's epochs, batch size and learning
# rate, and has the recipe's other values as its defaults). Runs land in --out (default runs/fashion-mnist-cpu-fast).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=5; threads=2; out=runs/fashion-mnist-cpu-fast; sets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --set) sets+=(--set "$2"); shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
bin=${DARKMAGIC_BIN:-target/release/darkmagic}
[ -x "$bin" ] || cargo build --release
recipe=recipes/fashion-mnist-cpu-fast.toml
value() { "$bin" recipe --recipe "$recipe" "${sets[@]}" | awk -v k="$1" -v s="$2" '
    /^\[/ {section=$0} section==s && $1==k {print $3; exit}'; }
epochs=$(value epochs "[train]"); batch=$(value batch_size "[train]"); lr=$(value lr "[optim]")
mkdir -p "$out"
train() { # seed threads
    rm -rf "$out/seed-$1"
    /usr/bin/time -f "%e" -o "$out/seed-$1.wall" "$bin" train --recipe "$recipe" "${sets[@]}" \
        --set "seed=$1" --threads "$2" --run-dir "$out/seed-$1" > "$out/seed-$1.log" 2>&1
}
acc() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['test_acc_tta'], r['test_acc'], r['test_acc_ema'])" "$out/seed-$1/result.json"; }
echo "darkmagic seed 0, $threads threads"
train 0 "$threads"
echo "  wall $(cat "$out/seed-0.wall") s; test (tta, plain, ema): $(acc 0)"
echo "pytorch seed 0, $threads threads"
(cd bench && /usr/bin/time -f "%e" -o "../$out/pytorch-0.wall" ../.venv/bin/python fashion_mnist_fast.py \
    --epochs "$epochs" --batch "$batch" --lr "$lr" --seed 0 --threads "$threads") > "$out/pytorch-0.log" 2>&1
echo "  wall $(cat "$out/pytorch-0.wall") s; $(tail -1 "$out/pytorch-0.log")"
echo "darkmagic / pytorch: $(echo "$(cat "$out/seed-0.wall") / $(cat "$out/pytorch-0.wall")" | bc -l | cut -c1-5)"
s=1
while [ "$s" -lt "$seeds" ]; do
    train "$s" 1 & first=$!
    if [ $((s + 1)) -lt "$seeds" ]; then train $((s + 1)) 1; fi
    wait "$first"
    s=$((s + 2))
done
for i in $(seq 0 $((seeds - 1))); do echo "seed $i test (tta, plain, ema): $(acc "$i")"; done
python3 - "$out" "$seeds" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
tta = [json.load(open(f"{out}/seed-{i}/result.json"))["test_acc_tta"] * 100 for i in range(n)]
print(f"mean of {n} seeds, test with TTA: {statistics.mean(tta):.2f}% (sd {statistics.stdev(tta) if n > 1 else 0:.2f})")
PY
