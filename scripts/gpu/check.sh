#!/usr/bin/env bash
# GPU check for a device machine that has PyTorch but no Rust toolchain or network:
# runs a darkmagic binary (built here against that machine's libtorch and carried in gpu/)
# on CUDA, and the PyTorch reference of the training-step benchmark in the same run.
# Usage (on the device): bash scripts/gpu/check.sh gpu/darkmagic   (binary from scripts/gpu/build.sh)
set -uo pipefail
bin=${1:-gpu/darkmagic}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
torch_lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
site=$(dirname "$(dirname "$torch_lib")")
nv=$(ls -d "$site"/nvidia/*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$torch_lib:$nv${LD_LIBRARY_PATH:-}"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
ldd "$bin" | grep "not found" && echo "missing libraries"
for batch in 128 512; do
    for round in 1 2 3; do
        "$bin" bench train --device cuda --model resnet20 --batch $batch --image 3x32x32 --steps 200 --warmup 30
        python3 bench/train_step.py --device cuda --depth 20 --batch $batch --image 3x32x32 --steps 200 --warmup 30 2>/dev/null
    done
done
"$bin" train --recipe recipes/digits.toml --run-dir /tmp/gpu-digits --set train.device=cuda | grep -E '"(status|final_val_acc|wall_seconds|device)"'
