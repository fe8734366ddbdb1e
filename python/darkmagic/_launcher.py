"""The `darkmagic` command of the pip wheel: finds this environment's torch, then runs the binary.

The binary (`darkmagic-core`, installed beside this script) links libtorch, which the torch
package keeps in `torch/lib`; where that folder is depends on the environment (a venv, conda, a
user site, a `.pth` file). This launcher finds it as `import torch` would, without importing
torch (that would load all of libtorch into the launcher too), checks that it is the torch release the binary was built against
(the wheel's `torch==X.Y.*` requirement), puts `torch/lib` first on `LD_LIBRARY_PATH` and
replaces itself with the binary. The binary restores the user's `LD_LIBRARY_PATH` at once and
starts its trials through this launcher again (src/launcher.rs), so each trial, on this machine,
a Slurm node or a Ray worker, finds and checks torch the same way.
"""
import importlib.metadata
import importlib.util
import os
import re
import sys

ENGINE = "darkmagic-core"


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def torch_series():
    """The `X.Y` of this wheel's `torch==X.Y.*` requirement."""
    for requirement in importlib.metadata.requires("darkmagic") or []:
        found = re.fullmatch(r"torch\s*==\s*(\d+\.\d+)\.\*", requirement.strip())
        if found:
            return found.group(1)
    fail("the darkmagic package declares no torch==X.Y.* requirement; reinstall it")


def torch_version(package):
    """`__version__` of the torch package in folder `package`, read from its version.py."""
    try:
        with open(os.path.join(package, "version.py"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return found.group(1) if found else None


def find_torch(series):
    """The `lib` folder of this environment's torch, after checking its version."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        fail(
            f"darkmagic needs PyTorch {series} and this Python ({sys.executable}) has no torch: "
            f"pip install 'torch=={series}.*'"
        )
    package = list(spec.submodule_search_locations)[0]
    version = torch_version(package)
    if version is None or not re.match(rf"{re.escape(series)}(\.|$)", version):
        fail(
            f"darkmagic was built against torch {series} and this Python's torch is "
            f"{version or 'of unknown version'} ({package}): pip install 'torch=={series}.*' "
            f"(or a darkmagic built for torch {version})"
        )
    lib = os.path.join(package, "lib")
    if not os.path.exists(os.path.join(lib, "libtorch_cuda.so")):
        fail(
            f"darkmagic links the CUDA build of torch {series} (PyPI's Linux wheel, which runs "
            f"on the CPU too) and the torch at {package} ({version}) is a CPU-only build without "
            f"lib/libtorch_cuda.so: pip install --force-reinstall 'torch=={series}.*'"
        )
    return lib


def installed(name):
    """The path of file `name` that pip installed with the darkmagic package (its scripts)."""
    for file in importlib.metadata.distribution("darkmagic").files or []:
        if file.name == name:
            return os.path.abspath(file.locate())
    fail(f"the darkmagic package has no {name} (a broken install?): reinstall it")


def main():
    lib = find_torch(torch_series())
    engine = installed(ENGINE)
    env = dict(os.environ)
    # The binary restores LD_LIBRARY_PATH before it starts anything, so what is here now is
    # the user's, also when a checklist starts a trial through this launcher.
    env.pop("DARKMAGIC_SAVED_LD_LIBRARY_PATH", None)
    saved = env.get("LD_LIBRARY_PATH")
    if saved is not None:
        env["DARKMAGIC_SAVED_LD_LIBRARY_PATH"] = saved
    env["LD_LIBRARY_PATH"] = lib + (os.pathsep + saved if saved else "")
    env["DARKMAGIC_LAUNCHER"] = installed("darkmagic")
    os.execve(engine, [engine] + sys.argv[1:], env)
