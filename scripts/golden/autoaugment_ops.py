"""Golden outputs of torchvision's AutoAugment operations on PIL images, for darkmagic's tests.

Inputs: three real Fashion-MNIST images (Debian's dataset-fashion-mnist): the first as a gray
image, the three stacked as the channels of an RGB image. For every op, bin 0..9 and sign,
`torchvision.transforms.autoaugment._apply_op` with NEAREST interpolation and the default fill
(0) gives the output. Writes OUT_DIR/ops.safetensors with `input/gray`, `input/rgb` and
`<image>/<op>/<bin>/<sign>` uint8 HWC tensors, and the magnitudes used as float64 `mag/...`.
Run: .venv/bin/python scripts/golden/autoaugment_ops.py OUT_DIR
"""
import gzip
import pathlib
import sys

import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import AutoAugment, _apply_op

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
raw = gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").read()
imgs = [torch.frombuffer(bytearray(raw[16 + i * 784 : 16 + (i + 1) * 784]), dtype=torch.uint8).reshape(28, 28) for i in range(3)]
inputs = {"gray": imgs[0], "rgb": torch.stack(imgs, dim=-1)}
space = AutoAugment()._augmentation_space(10, (28, 28))
tensors = {}
for name, hwc in inputs.items():
    tensors[f"input/{name}"] = hwc.contiguous()
    pil = Image.frombytes("L" if hwc.dim() == 2 else "RGB", (28, 28), bytes(hwc.contiguous().view(-1).tolist()))
    for op, (mags, signed) in space.items():
        for b in range(10 if mags.ndim > 0 else 1):
            for sign in ([1, -1] if signed else [1]):
                m = float(mags[b].item()) * sign if mags.ndim > 0 else 0.0
                res = _apply_op(pil, op, m, interpolation=InterpolationMode.NEAREST, fill=None)
                t = torch.tensor(list(res.tobytes()), dtype=torch.uint8).reshape(28, 28, -1)
                key = f"{name}/{op}/{b}/{'neg' if sign < 0 else 'pos'}"
                tensors[key] = t.contiguous()
                tensors[f"mag/{key}"] = torch.tensor([m], dtype=torch.float64)
save_file(tensors, str(out / "ops.safetensors"))
print(f"torchvision {torchvision.__version__}: {len(tensors)} tensors in {out}")
