# Sourced by the device scripts (check.sh, fashion_mnist.sh), from the repository root, with
# $bin (the darkmagic binary) and $device (cuda or cpu) set: picks the Python that has PyTorch
# (the project's .venv for a CPU smoke test here), puts its libtorch, its NVIDIA libraries and
# the carried gpu/lib (libturbojpeg) on LD_LIBRARY_PATH, and prints what the machine has.
python=${PYTHON:-$(command -v python3)}
[ -x .venv/bin/python ] && [ "$device" = cpu ] && python=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
torch_lib=$("$python" -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
site=$(dirname "$(dirname "$torch_lib")")
nv=$(ls -d "$site"/nvidia/*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$PWD/gpu/lib:$torch_lib:$nv${LD_LIBRARY_PATH:-}"
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
ldd "$bin" | grep "not found" && echo "missing libraries"
