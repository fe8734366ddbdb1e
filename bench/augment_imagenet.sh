#!/usr/bin/env bash
# ImageNet-size train transform (JPEG decode + random-resized crop 224 + flip + AutoAugment
# ImageNet + normalise): darkmagic's per-batch folder pipeline (1 and 2 threads) against
# torchvision's ImageFolder + DataLoader (num_workers 0 and 2), on the same JPEG files, in one
# run. Usage: bench/augment_imagenet.sh [images]  (default 512; files made by bench/jpeg_folder.py)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-512}
bin=${DARKMAGIC_BIN:-target/release/darkmagic}
[ -x "$bin" ] || cargo build --release
bash scripts/photos.sh
dir=data/bench-jpeg-$n
[ -d "$dir" ] || .venv/bin/python bench/jpeg_folder.py "$dir" "$n"
num() { sed -E 's/.*: ([0-9.]+) images\/s/\1/'; }
d1=$("$bin" bench augment --folder "$dir" --threads 1); echo "$d1"
t0=$(.venv/bin/python bench/augment_imagenet.py --folder "$dir" --workers 0 2>/dev/null); echo "$t0"
d2=$("$bin" bench augment --folder "$dir" --threads 2); echo "$d2"
t2=$(.venv/bin/python bench/augment_imagenet.py --folder "$dir" --workers 2 2>/dev/null); echo "$t2"
awk -v a="$(echo "$d1" | num)" -v b="$(echo "$t0" | num)" -v c="$(echo "$d2" | num)" -v d="$(echo "$t2" | num)" \
    'BEGIN { printf "ratio 1 thread / num_workers=0: %.2fx; 2 threads / num_workers=2: %.2fx\n", a/b, c/d }'
