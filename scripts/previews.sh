#!/usr/bin/env bash
# Regenerates the augmentation previews in docs/augment/: each policy on the embedded digits
# (32 samples) and on the photographs of data/photos (recipes/photos.toml, 16 samples).
# Run after changing an op or a policy; needs a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/release/darkmagic
for p in autoaugment_imagenet autoaugment_cifar10 autoaugment_svhn randaugment color_jitter; do
    "$B" augment preview --set augment.policy="$p" --out "docs/augment/digits-$p.png" --count 32
    "$B" augment preview --recipe recipes/photos.toml --set augment.policy="$p" \
        --out "docs/augment/photos-$p.png" --count 16
done
