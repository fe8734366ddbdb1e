"""PyTorch reference for `darkmagic bench train`: the same network and training step.

`--model resnet20|resnet32|resnet56`: a CIFAR-style ResNet (He et al. 2016; 3x3 stem, 3 stages
of basic blocks, 1x1 projection shortcuts) without SE, ReLU everywhere; `resnet18|34|50`,
`mobilenet_v3_small`, `mobilenet_v3_large`: torchvision's, `efficientnet_b0`: timm's, dropout
off. SGD with Nesterov momentum 0.9, weight decay 5e-5;
cross-entropy with label smoothing 0.1; one fixed random batch; `loss.item()` every step as a
training loop that logs its loss does. `--channels-last` and `--amp bf16|fp16` as timm's
`--channels-last --amp --amp-dtype` (fp16 with torch.amp.GradScaler). Prints images per second
over the timed steps.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        nn.init.zeros_(self.bn2.weight)  # as darkmagic (timm's zero_init_last)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(h + s)


class CifarResNet(nn.Module):
    def __init__(self, depth, in_ch, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, c = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            for i in range(n):
                blocks.append(Block(c, planes, 2 if stage > 0 and i == 0 else 1))
                c = planes
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.blocks(h)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def model(name, in_ch, classes):
    if name in ("resnet20", "resnet32", "resnet56"):
        return CifarResNet(int(name.removeprefix("resnet")), in_ch, classes)
    if name == "efficientnet_b0":
        import timm

        return timm.create_model(name, num_classes=classes, in_chans=in_ch)
    import torchvision

    extra = {"dropout": 0.0} if name.startswith("mobilenet") else {}
    return getattr(torchvision.models, name)(num_classes=classes, **extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--image", default="3x32x32")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True), as darkmagic does")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    if a.flush_denormal:
        torch.set_flush_denormal(True)
    c, h, w = (int(v) for v in a.image.split("x"))
    net = model(a.model, c, a.classes).to(dev).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-5)
    x = torch.randn(a.batch, c, h, w, device=dev)
    y = torch.randint(a.classes, (a.batch,), device=dev)
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[a.amp]
    scaler = torch.amp.GradScaler(dev, enabled=a.amp == "fp16")

    def step():
        with torch.autocast(dev, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(net(x), y, label_smoothing=0.1)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.item()

    for _ in range(a.warmup):
        step()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    ips = a.steps * a.batch / (time.perf_counter() - start)
    print(f"pytorch {torch.__version__} train {a.model} batch {a.batch} image {a.image} "
          f"device {dev} threads {torch.get_num_threads()} channels_last {str(a.channels_last).lower()} amp {a.amp}: "
          f"{ips:.1f} images/s")


if __name__ == "__main__":
    main()
