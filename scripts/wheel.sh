#!/usr/bin/env bash
# Builds the pip wheel of darkmagic (pyproject.toml; docs/pip-wheel.md) into target/wheels/ with
# maturin from the project's .venv (scripts/setup.sh installs it), then prints what
# `auditwheel show` says of it. The wheel holds the `darkmagic` launcher (python/darkmagic/) and
# the binary `darkmagic-core`, with libjpeg-turbo linked in statically and libtorch left to the
# environment's torch package.
# Usage: bash scripts/wheel.sh        (prints the wheel's path last)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/maturin ] || { echo "run bash scripts/setup.sh first (it installs maturin)" >&2; exit 1; }
# libjpeg-turbo from Debian's libturbojpeg0-dev, linked statically: a user's machine need not have it.
jpeg_lib=$(dirname "$(ldconfig -p | awk '/libturbojpeg.so / {print $NF; exit}')")
[ -f "$jpeg_lib/libturbojpeg.a" ] || { echo "no libturbojpeg.a in $jpeg_lib: apt-get install libturbojpeg0-dev" >&2; exit 1; }
export TURBOJPEG_SOURCE=explicit TURBOJPEG_STATIC=1 TURBOJPEG_LIB_DIR=$jpeg_lib TURBOJPEG_INCLUDE_DIR=/usr/include
# A target folder of its own: the wheel's build (feature `wheel`, static libjpeg-turbo) and the
# tests' build do not overwrite each other's artifacts or wait on each other's lock.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/wheel}
rm -rf target/wheels
.venv/bin/maturin build --release --locked --out target/wheels --compatibility manylinux_2_34 --auditwheel skip >&2
wheel=$(ls target/wheels/darkmagic-*.whl)
.venv/bin/auditwheel show "$wheel" >&2 || true
echo "$PWD/$wheel"
