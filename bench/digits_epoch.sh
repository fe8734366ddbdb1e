#!/usr/bin/env bash
# Seconds per digits epoch: `darkmagic train` on recipes/digits.toml (one thread, no policy,
# ReLU, SE off and on) against the same loop in PyTorch (bench/digits_epoch.py), in one run.
# An epoch's cost is (wall time of an N-epoch run - wall time of a 2-epoch run) / (N - 2): the
# difference cancels process start and data loading and keeps every per-epoch cost (training
# steps, evaluation, metrics and checkpoint writes). (Two epochs, not one: the recipe's warm-up
# epoch needs a run longer than it.) A run that fails stops the benchmark. R alternating rounds;
# medians and ratios.
# Usage: bench/digits_epoch.sh [--epochs N] [--rounds R] [--pytorch-channels-last] [--set KEY=VALUE]...
# (--set goes to darkmagic, e.g. --set train.amp=bf16)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=12; rounds=3; pt_flags=(); dm_sets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --epochs) epochs=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --pytorch-channels-last) pt_flags+=(--channels-last); shift ;;
        --set) dm_sets+=(--set "$2"); shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
bin=${DARKMAGIC_BIN:-target/release/darkmagic}
[ -x "$bin" ] || cargo build --release
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
wall() {
    local t0 log; t0=$(date +%s.%N); log=$(mktemp -p "$out")
    "$@" > "$log" 2>&1 || { echo "failed: $*" >&2; tail -3 "$log" >&2; return 1; }
    echo "$(date +%s.%N) - $t0" | bc -l
}
dm() { rm -rf "$out/run"; wall "$bin" train --recipe recipes/digits.toml --threads 1 --run-dir "$out/run" \
    --set augment.policy=none --set model.activation=relu --set "model.se=$1" --set "train.epochs=$2" "${dm_sets[@]}"; }
pt() { local se=(); [ "$1" = true ] && se=(--se); wall .venv/bin/python bench/digits_epoch.py --threads 1 \
    --epochs "$2" "${se[@]}" "${pt_flags[@]}"; }
per_epoch() {
    local long short; long=$($1 "$2" "$epochs") && short=$($1 "$2" 2) && echo "($long - $short) / ($epochs - 2)" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for se in false true; do
    d=(); p=()
    for r in $(seq "$rounds"); do
        d+=("$(per_epoch dm "$se")") && p+=("$(per_epoch pt "$se")") || exit 1
        printf 'se %s round %s: darkmagic %.3f s/epoch, pytorch %.3f s/epoch\n' "$se" "$r" "${d[-1]}" "${p[-1]}"
    done
    md=$(median "${d[@]}"); mp=$(median "${p[@]}")
    printf 'se %s median: darkmagic%s %.3f s/epoch, pytorch%s %.3f s/epoch, darkmagic/pytorch time %.3f\n' \
        "$se" "${dm_sets[*]:+ ${dm_sets[*]}}" "$md" "${pt_flags[*]:+ ${pt_flags[*]}}" "$mp" "$(echo "$md / $mp" | bc -l)"
done
