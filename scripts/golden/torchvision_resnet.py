"""Reference weights and outputs of torchvision's ResNet-18 for darkmagic's import test.

Random initialisation (seed 0), batch-norm statistics and affine parameters randomised so that
evaluation mode is not the identity, 10 classes. Writes into OUT_DIR:
- weights.safetensors: the state dict, torchvision's names (num_batches_tracked included),
- io.safetensors: `input` (2x3x64x64) and `output`, the logits in evaluation mode.
Run: .venv/bin/python scripts/golden/torchvision_resnet.py OUT_DIR [resnet18|resnet34|resnet50]
"""
import pathlib
import sys

import torch
import torchvision
from safetensors.torch import save_file

out = pathlib.Path(sys.argv[1])
arch = sys.argv[2] if len(sys.argv) > 2 else "resnet18"
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
model = getattr(torchvision.models, arch)(num_classes=10)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
model.eval()
x = torch.randn(2, 3, 64, 64)
with torch.no_grad():
    y = model(x)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "weights.safetensors"))
save_file({"input": x, "output": y}, str(out / "io.safetensors"))
print(f"torchvision {torchvision.__version__} {arch}: wrote {out}")
