"""The `darkmagic` command of the pip wheel: finds this environment's torch, then runs the binary.

The binary (`darkmagic-core`, installed beside this script) links libtorch, which the torch
package keeps in `torch/lib`; where that folder is depends on the environment (a venv, conda, a
user site, a `.pth` file). This launcher finds it as `import torch` would, without importing
torch (that would load all of libtorch into the launcher too), checks that it is the torch release the binary was built against
(the wheel's `torch==X.Y.*` requirement), puts `torch/lib` first on `LD_LIBRARY_PATH` and
replaces itself with the binary. The binary restores the user's `LD_LIBRARY_PATH` at once and
starts its trials through this launcher again (crates/base/src/launcher.rs), so each trial, on this machine,
a Slurm node or a Ray worker, finds and checks torch the same way.
"""
import importlib.metadata
import importlib.util
import os
import re
import stat
import sys

ENGINE = "darkmagic-core"
# torch's version.py is a few hundred bytes; more is not a version file.
MAX_VERSION_BYTES = 1 << 16


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def distribution():
    """The installed darkmagic distribution (its metadata and files)."""
    try:
        return importlib.metadata.distribution("darkmagic")
    except importlib.metadata.PackageNotFoundError:
        fail(
            f"this Python ({sys.executable}) has no installed darkmagic package (its metadata is "
            "missing: run from a source folder?): pip install the darkmagic wheel"
        )


def torch_series():
    """The `X.Y` of this wheel's `torch==X.Y.*` requirement."""
    for requirement in distribution().requires or []:
        found = re.fullmatch(r"torch\s*==\s*(\d+\.\d+)\.\*", requirement.strip())
        if found:
            return found.group(1)
    fail("the darkmagic package declares no torch==X.Y.* requirement; reinstall it")


def torch_version(package):
    """`__version__` of the torch package in folder `package` and None, or None and why not.

    Its version.py is opened without blocking (a FIFO cannot hang the launcher), must be a
    regular file of at most MAX_VERSION_BYTES, and is decoded leniently."""
    path = os.path.join(package, "version.py")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return None, f"cannot open {path}: {e.strerror}"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None, f"{path} is not a regular file"
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_VERSION_BYTES + 1)
        except OSError as e:
            return None, f"cannot read {path}: {e.strerror}"
    if len(data) > MAX_VERSION_BYTES:
        return None, f"{path} holds more than {MAX_VERSION_BYTES} bytes"
    text = data.decode("utf-8", errors="replace")
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"\n]+)['\"]", text, re.MULTILINE)
    if not found:
        return None, f"{path} sets no __version__ = '...' string"
    return found.group(1), None


def find_torch(series):
    """The `lib` folder of this environment's torch, after checking its version."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        fail(
            f"darkmagic needs PyTorch {series} and this Python ({sys.executable}) has no torch: "
            f"pip install 'torch=={series}.*'"
        )
    package = list(spec.submodule_search_locations)[0]
    version, why = torch_version(package)
    if version is None:
        fail(
            f"darkmagic was built against torch {series} and the version of this Python's torch "
            f"({package}) is unknown: {why}; pip install --force-reinstall 'torch=={series}.*'"
        )
    if not re.match(rf"{re.escape(series)}(\.|$)", version):
        fail(
            f"darkmagic was built against torch {series} and this Python's torch is "
            f"{version} ({package}): pip install 'torch=={series}.*' "
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
    for file in distribution().files or []:
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
    try:
        os.execve(engine, [engine] + sys.argv[1:], env)
    except OSError as e:
        fail(f"cannot run {engine}: {e.strerror}; reinstall the darkmagic package")
