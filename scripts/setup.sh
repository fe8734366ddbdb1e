#!/usr/bin/env bash
# Sets up everything darkmagic needs on a fresh Debian machine, idempotently:
# - a project-local virtualenv `.venv` holding PyTorch 2.13.0 (libtorch for tch),
# - the link `.venv/torch` that `.cargo/config.toml` points LIBTORCH at,
# - Debian packages: libjpeg-turbo (darkmagic decodes JPEG with it, as PIL does), Fashion-MNIST (for `recipes/fashion-mnist-resnet20.toml`), Chromium (the
#   tests open the checklist report in a real headless browser), Slurm and munge (the cluster
#   tests run a one-node Slurm on localhost),
# - Ray in the virtualenv (the cluster tests run a Ray head on localhost),
# - timm in the virtualenv (tests/external.rs runs timm's train.py as an external trainer),
# - TensorBoard and MLflow in the virtualenv (tests/tensorboard.rs, tests/mlflow.rs),
# - maturin and auditwheel in the virtualenv (scripts/wheel.sh, tests/wheel.rs),
# - pandas, Hugging Face datasets and webdataset in the virtualenv (tests/datasets.rs),
# - data/photos: scikit-image's sample photographs as an RGB image folder (scripts/photos.sh).
# Rerunning it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet "torch==$TORCH_VERSION"
fi
# torchvision (the version paired with torch 2.13) and safetensors: the scripts that make the
# tests' reference values (scripts/golden/) call them.
if ! .venv/bin/python -c "import torchvision, safetensors" 2>/dev/null; then
    .venv/bin/pip install --quiet "torchvision==0.28.0" safetensors
fi
# Ray, pinned: the version tests/cluster.rs runs against (token authentication needs >= 2.52).
RAY_VERSION=2.60.0
.venv/bin/python -c "import ray, sys; sys.exit(ray.__version__ != '$RAY_VERSION')" 2>/dev/null ||
    .venv/bin/pip install --quiet "ray[default]==$RAY_VERSION"
# timm, pinned: tests/fixtures/timm/train.py runs with it (and the torch and torchvision above).
TIMM_VERSION=1.0.31
.venv/bin/python -c "import timm, sys; sys.exit(timm.__version__ != '$TIMM_VERSION')" 2>/dev/null ||
    .venv/bin/pip install --quiet "timm==$TIMM_VERSION"
# TensorBoard, pinned: tests/tensorboard.rs reads darkmagic's event files with its EventAccumulator
# (its server, for scripts/tensorboard_screenshot.sh, imports pkg_resources, gone from setuptools 81).
TENSORBOARD_VERSION=2.20.0
.venv/bin/python -c "import tensorboard, pkg_resources, sys; sys.exit(tensorboard.__version__ != '$TENSORBOARD_VERSION')" 2>/dev/null ||
    .venv/bin/pip install --quiet "tensorboard==$TENSORBOARD_VERSION" "setuptools<81"
# MLflow, pinned: tests/mlflow.rs starts its tracking server (sqlite store) and reads the runs
# back with its client.
MLFLOW_VERSION=3.17.2
.venv/bin/python -c "import mlflow, sys; sys.exit(mlflow.__version__ != '$MLFLOW_VERSION')" 2>/dev/null ||
    .venv/bin/pip install --quiet "mlflow==$MLFLOW_VERSION"
# pandas, pillow and numpy: tests/datasets.rs writes its manifests and images with them (MLflow
# and torchvision bring them; checked here so that the tests never depend on that).
.venv/bin/python -c "import pandas, PIL, numpy" 2>/dev/null ||
    .venv/bin/pip install --quiet pandas pillow numpy
# Hugging Face datasets and webdataset, pinned: tests/datasets.rs and bench/dataset_readers.py
# write parquet files and tar shards with them (scripts/dataset_formats.py) and read them back.
DATASETS_VERSION=5.2.0 WEBDATASET_VERSION=1.0.2
.venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('datasets') != '$DATASETS_VERSION' or m.version('webdataset') != '$WEBDATASET_VERSION')" 2>/dev/null ||
    .venv/bin/pip install --quiet "datasets==$DATASETS_VERSION" "webdataset==$WEBDATASET_VERSION"
# maturin and auditwheel, pinned: scripts/wheel.sh builds the pip wheel with the one and shows
# its platform tag and external libraries with the other (tests/wheel.rs).
MATURIN_VERSION=1.16.0 AUDITWHEEL_VERSION=6.8.2
.venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('maturin') != '$MATURIN_VERSION' or m.version('auditwheel') != '$AUDITWHEEL_VERSION')" 2>/dev/null ||
    .venv/bin/pip install --quiet "maturin==$MATURIN_VERSION" "auditwheel==$AUDITWHEEL_VERSION"
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
ln -sfn "$site/torch" .venv/torch
# Real RGB photographs (data/photos) for the resize golden test, previews and benchmarks.
bash scripts/photos.sh

missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v chromium >/dev/null || missing+=(chromium)
command -v slurmctld >/dev/null || missing+=(slurmctld slurmd slurm-client munge)
pkg-config --exists libturbojpeg 2>/dev/null || missing+=(libturbojpeg0-dev pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "darkmagic setup: torch $TORCH_VERSION in .venv, LIBTORCH=.venv/torch"
