#!/usr/bin/env bash
# Compares darkmagic's training step with PyTorch's on the same network, in one run.
# Usage: bench/train_step.sh [--model resnet20|...|mobilenet_v3_small|efficientnet_b0] [--steps N]
#        [--threads T] [--device cpu|cuda] [--rounds R] [--batch B] [--image CxHxW]
#        [--channels-last] [--amp off|bf16|fp16]
# (--channels-last and --amp apply to both sides, as timm's flags of the same names)
# Runs R alternating rounds of each (default 3) and reports the median images/s and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
model=resnet20; steps=50; threads=0; device=auto; rounds=3; batch=128; image=3x32x32; cl=""; amp=off
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --image) image=$2; shift 2 ;;
        --channels-last) cl=--channels-last; shift ;;
        --amp) amp=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
bin=${DARKMAGIC_BIN:-target/release/darkmagic}
[ -x "$bin" ] || cargo build --release
common="--batch $batch --image $image --steps $steps --threads $threads --device $device --amp $amp $cl"
dm=(); pt=()
for r in $(seq "$rounds"); do
    line=$("$bin" bench train --model "$model" $common); echo "$line"
    dm+=("$(echo "$line" | sed -E 's/.*: ([0-9.]+) images\/s/\1/')")
    line=$(.venv/bin/python bench/train_step.py --model "$model" $common); echo "$line"
    pt+=("$(echo "$line" | sed -E 's/.*: ([0-9.]+) images\/s/\1/')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
d=$(median "${dm[@]}"); p=$(median "${pt[@]}")
echo "median darkmagic $d images/s, pytorch $p images/s, ratio darkmagic/pytorch $(awk -v d="$d" -v p="$p" 'BEGIN {printf "%.3f", d/p}')"
