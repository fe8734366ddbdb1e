#!/usr/bin/env bash
# ImageNet-size train transform (JPEG decode + random-resized crop 224 + flip + AutoAugment
# ImageNet + normalise): darkmagic's per-batch folder pipeline (1 and 2 threads) against
# torchvision's ImageFolder + DataLoader (num_workers 0 and 2), on the same JPEG files, in one
# run. Usage: bench/augment_imagenet.sh [images]  (default 512; files made by bench/jpeg_folder.py)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-512}
bash scripts/photos.sh
dir=data/bench-jpeg-$n
[ -d "$dir" ] || .venv/bin/python bench/jpeg_folder.py "$dir" "$n"
source bench/loader_vs_torchvision.sh
loader_vs_torchvision bench/augment_imagenet.py "--folder $dir" "--folder $dir"
