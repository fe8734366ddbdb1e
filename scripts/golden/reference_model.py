"""Reference weights and outputs of a torchvision or timm classifier for darkmagic's import tests.

Random initialisation (seed 0), batch-norm statistics and affine parameters randomised so that
evaluation mode is not the identity, linear layers with standard deviation 1/sqrt(fan-in) so
that logits are of order 1, 10 classes. Writes into OUT_DIR:
- weights.safetensors: the state dict, the reference's names (num_batches_tracked included),
- io.safetensors: `input` (2x3x64x64) and `output`, the logits in evaluation mode.
With a third argument `train`, also train.safetensors: one training-mode forward and backward
(dropout off) from the same weights: `input`, `output`, `weight`, `grad.<name>` of
sum(output * weight) for every parameter, `after.<name>` for every running statistic.
With a third argument `images`, also the whole evaluation pipeline of torchvision's reference
scripts on image files:
- images/c0 .. images/c9: one PNG per class (random pixels, RGB and gray, several sizes),
- predict.json: per file (path relative to OUT_DIR) its label and the logits of
  Resize(floor(64 / 0.875)) -> CenterCrop(64) -> ToTensor -> Normalize(ImageNet mean, std),
  PIL bilinear, on the image converted to RGB.
The architecture is torchvision's (resnet18/34/50, mobilenet_v3_small, mobilenet_v3_large) or,
where darkmagic follows timm, timm's with timm's names: efficientnet_b0, and what torchvision
lacks (resnet18d, resnet50d: ResNet-D; resnetblur18, resnetblur50d: BlurPool).
Run: .venv/bin/python scripts/golden/reference_model.py OUT_DIR [ARCH] [train|images]
"""
import json
import math

import pathlib
import sys

import torch
import torchvision
from safetensors.torch import save_file

out = pathlib.Path(sys.argv[1])
arch = sys.argv[2] if len(sys.argv) > 2 else "resnet18"
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
if arch == "efficientnet_b0" or not hasattr(torchvision.models, arch):
    import timm

    model = timm.create_model(arch, num_classes=10)
else:
    model = getattr(torchvision.models, arch)(num_classes=10)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
        elif isinstance(m, torch.nn.Linear):
            # torchvision's MobileNetV3 initialises its classifiers with std 0.01: logits of
            # about 0.01 would make an absolute tolerance meaningless.
            m.weight.normal_(0, m.in_features ** -0.5)
            m.bias.uniform_(-0.2, 0.2)
model.eval()
x = torch.randn(2, 3, 64, 64)
with torch.no_grad():
    y = model(x)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "weights.safetensors"))
save_file({"input": x, "output": y}, str(out / "io.safetensors"))
if len(sys.argv) > 3 and sys.argv[3] == "train":
    # One training-mode step from the same weights, dropout off: the logits (batch statistics),
    # the gradients of sum(logits * weight) and the running statistics after the step.
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    x = torch.randn(4, 3, 64, 64)
    y = model(x)
    w = torch.randn_like(y)
    (y * w).sum().backward()
    step = {"input": x, "output": y.detach(), "weight": w}
    step.update({f"grad.{k}": p.grad for k, p in model.named_parameters()})
    step.update({f"after.{k}": v for k, v in model.state_dict().items() if "running" in k})
    save_file({k: v.contiguous() for k, v in step.items()}, str(out / "train.safetensors"))
if len(sys.argv) > 3 and sys.argv[3] == "images":
    import numpy as np
    from PIL import Image
    from torchvision import transforms

    rng = np.random.default_rng(0)
    sizes = [(80, 72), (64, 64), (100, 70), (75, 90), (66, 120)]
    tf = transforms.Compose([
        transforms.Resize(math.floor(64 / 0.875), interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(64),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    golden = {}
    for label in range(10):
        w, h = sizes[label % len(sizes)]
        gray = label % 3 == 2
        shape = (h, w) if gray else (h, w, 3)
        rel = f"images/c{label}/img{label}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(out / rel)
        x = tf(Image.open(out / rel).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            golden[rel] = {"label": label, "logits": model(x)[0].tolist()}
    (out / "predict.json").write_text(json.dumps(golden))
print(f"{type(model).__module__} {arch}: wrote {out}")
