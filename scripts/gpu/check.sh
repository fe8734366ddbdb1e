#!/usr/bin/env bash
# GPU check for a device machine that has PyTorch but no Rust toolchain or network:
# runs a darkmagic binary (built here against that machine's libtorch and carried in gpu/, with
# libturbojpeg in gpu/lib) on CUDA, beside the PyTorch references, in one run:
# 1. training steps, ResNet-20 on 3x32x32, batch 128 and 512: darkmagic against PyTorch eager
#    with the same settings (fp32 NCHW; fp32 channels-last; bf16 autocast + channels-last),
#    CHECK_ROUNDS alternating rounds each (default 3), medians and ratios;
# 2. packing: 3 training runs (ResNet-20, random CIFAR-format data, 3 epochs) one after another,
#    then 3 at once on the same GPU: trials per hour of each.
# Usage (on the device): bash scripts/gpu/check.sh gpu/darkmagic
# CHECK_PARTS: "steps packing" (default) or one of them.
# Smoke test on a CPU machine: CHECK_DEVICE=cpu CHECK_STEPS=2 CHECK_WARMUP=1 CHECK_IMAGES=300 bash scripts/gpu/check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-gpu/darkmagic}
device=${CHECK_DEVICE:-cuda}
steps=${CHECK_STEPS:-200}
warmup=${CHECK_WARMUP:-30}
images=${CHECK_IMAGES:-10000}
rounds=${CHECK_ROUNDS:-3}
parts=${CHECK_PARTS:-steps packing}
source scripts/gpu/env.sh
ips() { sed -E 's/.*: ([0-9.]+) images\/s/\1/'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

[[ " $parts " == *" steps "* ]] && echo "== 1. training steps (images/s; ratio darkmagic/pytorch)"
[[ " $parts " == *" steps "* ]] && for batch in 128 512; do
    for mode in "fp32-nchw::off" "fp32-channels-last:--channels-last:off" "bf16-channels-last:--channels-last:bf16"; do
        IFS=: read -r name cl amp <<< "$mode"
        args=(--device "$device" --batch "$batch" --image 3x32x32 --steps "$steps" --warmup "$warmup" --amp "$amp" $cl)
        d=(); p=()
        for _ in $(seq "$rounds"); do
            d+=("$("$bin" bench train --model resnet20 "${args[@]}" | ips)")
            p+=("$("$python" bench/train_step.py --model resnet20 "${args[@]}" 2>/dev/null | ips)")
        done
        md=$(median "${d[@]}"); mp=$(median "${p[@]}")
        echo "batch $batch $name: darkmagic $md, pytorch $mp, ratio $(awk -v a="$md" -v b="$mp" 'BEGIN {printf "%.3f", a/b}')"
    done
done

[[ " $parts " == *" packing "* ]] || exit 0
echo "== 2. packing trials on one GPU"
data=$(mktemp -d)
"$python" - "$data" "$images" <<'PY'
import os, sys
import numpy as np
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
def batch(path, count):
    rec = np.empty((count, 3073), np.uint8)
    rec[:, 0] = rng.integers(0, 10, count)
    rec[:, 1:] = rng.integers(0, 256, (count, 3072))
    rec.tofile(os.path.join(out, path))
for i in range(1, 6):
    batch(f"data_batch_{i}.bin", n // 5)
batch("test_batch.bin", max(n // 10, 10))
open(os.path.join(out, "batches.meta.txt"), "w").write("\n".join(f"class{i}" for i in range(10)) + "\n")
PY
# Threads as the local executor shares them: all cores for one trial, a third each for three.
trial() {
    "$bin" train --run-dir "$data/run-$1" --threads "$2" --set data.dataset=cifar10 --set "data.path=\"$data\"" \
        --set model.arch=resnet20 --set train.epochs=3 --set train.batch_size=128 \
        --set "train.device=$device" --set augment.pad=4 --set augment.hflip=true > /dev/null 2>&1 \
        || echo "trial $1 failed: $(tail -3 "$data/run-$1/train.log" 2>/dev/null)"
}
start=$(date +%s.%N)
for i in 1 2 3; do trial "seq-$i" "$(nproc)"; done
seq_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
start=$(date +%s.%N)
for i in 1 2 3; do trial "packed-$i" $(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 )) & done
wait
packed_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
awk -v s="$seq_s" -v p="$packed_s" 'BEGIN {
    printf "3 trials one at a time: %.1f s (%.0f trials/hour); 3 at once: %.1f s (%.0f trials/hour); gain %.2fx\n",
        s, 3 * 3600 / s, p, 3 * 3600 / p, s / p }'
grep -h '"status"' "$data"/run-*/result.json | sort | uniq -c
rm -rf "$data"
