#!/usr/bin/env bash
# Builds gpu/darkmagic against the libtorch of another PyTorch wheel (the device machine's
# version), for scripts/gpu/check.sh. tch 0.26 is generated for libtorch 2.13; operators an older
# libtorch lacks are stubbed out of a patched copy of torch-sys (darkmagic uses none of them).
# Usage: bash scripts/gpu/build.sh 2.11.0
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${1:?torch version, e.g. 2.11.0}
work=/tmp/darkmagic-torch-$version
mkdir -p "$work" gpu
grep -qx '/gpu/' .git/info/exclude || echo '/gpu/' >> .git/info/exclude
if [ ! -d "$work/torch/lib" ]; then
    pip download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
        "torch==$version" -d "$work"
    (cd "$work" && unzip -q -o torch-"$version"-*.whl 'torch/lib/*' 'torch/include/*' 'torch/share/*')
fi
rm -rf "$work/torch-sys" && cp -r "$(ls -d ~/.cargo/registry/src/*/torch-sys-0.26.0 | head -1)" "$work/torch-sys"
cp Cargo.lock "$work/Cargo.lock.bak"
trap 'cp "$work/Cargo.lock.bak" Cargo.lock' EXIT
build() {
    LIBTORCH="$work/torch" LIBTORCH_BYPASS_VERSION_CHECK=1 CARGO_TARGET_DIR="$work/target" \
        cargo build --release --bin darkmagic --config "patch.crates-io.torch-sys.path=\"$work/torch-sys\"" 2>&1 | tee "$work/build.log"
}
if ! build; then
    lines=$(grep -o 'torch_api_generated.cpp:[0-9]*:[0-9]*: error' "$work/build.log" | cut -d: -f2 | sort -un)
    python3 scripts/gpu/patch_torch_sys.py "$work/torch-sys" $lines
    build
fi
cp "$work/target/release/darkmagic" gpu/darkmagic
# The device image lacks libturbojpeg; scripts/gpu/check.sh puts gpu/lib on LD_LIBRARY_PATH.
mkdir -p gpu/lib && cp -L "$(ldconfig -p | awk '/libturbojpeg.so.0 / {print $NF; exit}')" gpu/lib/
echo "built gpu/darkmagic against torch $version (carry gpu/ to the device)"
