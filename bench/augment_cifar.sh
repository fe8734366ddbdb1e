#!/usr/bin/env bash
# CIFAR train transform with AutoAugment: darkmagic's pipeline (1 and 2 threads) against
# torchvision's DataLoader (num_workers 0 and 2), in one run. Usage: bench/augment_cifar.sh [images]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8192}
bin=${DARKMAGIC_BIN:-target/release/darkmagic}
[ -x "$bin" ] || cargo build --release
num() { sed -E 's/.*: ([0-9.]+) images\/s/\1/'; }
d1=$("$bin" bench augment --images "$n" --threads 1); echo "$d1"
t0=$(.venv/bin/python bench/augment_cifar.py --images "$n" --workers 0 2>/dev/null); echo "$t0"
d2=$("$bin" bench augment --images "$n" --threads 2); echo "$d2"
t2=$(.venv/bin/python bench/augment_cifar.py --images "$n" --workers 2 2>/dev/null); echo "$t2"
awk -v a="$(echo "$d1" | num)" -v b="$(echo "$t0" | num)" -v c="$(echo "$d2" | num)" -v d="$(echo "$t2" | num)" \
    'BEGIN { printf "ratio 1 thread / num_workers=0: %.1fx; 2 threads / num_workers=2: %.1fx\n", a/b, c/d }'
