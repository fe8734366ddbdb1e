#!/usr/bin/env bash
# Reading a data set in each format users hold (issue 45): darkmagic (`darkmagic bench read`:
# the listing, then every image of both splits decoded on one thread) against the Python library
# each format's users read it with (bench/dataset_readers.py: torchvision's ImageFolder, pandas +
# PIL, Hugging Face `datasets`, `webdataset`; a torch DataLoader in this process), on the same
# files, alternating, 3 rounds, the median of each. The files: the first N training images of
# Fashion-MNIST (28x28 gray PNGs, a sixth as the test split) written by scripts/dataset_formats.py.
# Usage: bench/dataset_readers.sh [N]  (default 12000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-12000}
dir=data/bench-formats-$n
[ -d "$dir" ] || .venv/bin/python scripts/dataset_formats.py "$dir" --count "$n" --shard 1000 \
    --fashion-mnist /usr/share/datasets/fashion-mnist 2>/dev/null
cargo build --release --quiet
declare -A dm py
for round in 1 2 3; do
    for f in folder manifest parquet webdataset; do
        path=$dir/$f; [ "$f" = manifest ] && path=$dir/manifest.csv
        dm[$f]+="$(target/release/darkmagic bench read "$path" | sed 's/.*: \([0-9.]*\) images\/s/\1/') "
        py[$f]+="$(HF_DATASETS_OFFLINE=1 .venv/bin/python bench/dataset_readers.py "$f" "$dir" 2>/dev/null | tail -1 | sed 's/.*: \([0-9.]*\) images\/s/\1/') "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | sed -n 2p; }
echo "| format | darkmagic (images/s) | Python library (images/s) | darkmagic / Python |"
echo "|---|---|---|---|"
for f in folder manifest parquet webdataset; do
    d=$(echo "${dm[$f]}" | median); p=$(echo "${py[$f]}" | median)
    echo "| $f | $d | $p | $(python3 -c "print(f'{$d / $p:.2f}x')") |"
done
