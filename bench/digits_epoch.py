"""The digits training epoch of `recipes/digits.toml`, written as a plain PyTorch loop.

What a PyTorch user would write for darkmagic's default digits run: the embedded digits
(data/digits.csv.gz, pixel counts scaled to 0..255, 10% held out for validation), per-channel
normalisation, zero padding 1 + random 8x8 crop per image, CIFAR ResNet-20 (ReLU; leaky ReLU in
the stem and the stride-2 blocks as the recipe's `downscale_activation`; optional timm SE before
the residual addition), SGD Nesterov 0.9 with weight decay 5e-5 on >= 2-D weights only, label
smoothing 0.1, batch 64 (last partial batch dropped), a per-step learning rate, `loss.item()` and
the accuracy count read every step, and evaluation (loss, top-1, top-5) on the held-out images
after every epoch. Prints the median seconds per epoch over epochs 2..N.
Usage: python bench/digits_epoch.py [--epochs N] [--threads T] [--se] [--channels-last]
"""
import argparse
import gzip
import math
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def act(leaky):
    return nn.LeakyReLU(0.01) if leaky else nn.ReLU()


class SE(nn.Module):
    """timm's SEModule: GAP, 1x1 conv to max(8, round(C/16 to 8)), ReLU, 1x1 conv, sigmoid."""

    def __init__(self, c):
        super().__init__()
        r = max(8, int(c / 16 + 4) // 8 * 8)
        self.fc1, self.fc2 = nn.Conv2d(c, r, 1), nn.Conv2d(r, c, 1)

    def forward(self, x):
        return x * self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))).sigmoid()


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride, se, leaky=True):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.se = SE(c_out) if se else nn.Identity()
        self.act = act(leaky and stride == 2)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = self.act(self.bn1(self.conv1(x)))
        h = self.se(self.bn2(self.conv2(h)))
        return self.act(h + (x if self.down is None else self.down(x)))


class ResNet20(nn.Module):
    """`leaky`: leaky ReLU in the stem and the stride-2 blocks (darkmagic's default
    `downscale_activation`); False: ReLU everywhere."""

    def __init__(self, se, classes=10, leaky=True):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), act(leaky))
        blocks, c = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            for i in range(3):
                blocks.append(Block(c, planes, 2 if stage > 0 and i == 0 else 1, se, leaky))
                c = planes
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def load_digits():
    rows = np.loadtxt(gzip.open("data/digits.csv.gz", "rt"), delimiter=",")
    x = torch.tensor(np.round(rows[:, :64] * 255 / 16), dtype=torch.float32).view(-1, 1, 8, 8)
    return x, torch.tensor(rows[:, 64], dtype=torch.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--se", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x, y = load_digits()
    perm = torch.randperm(len(x))
    n_val = len(x) // 10
    xv, yv, xt, yt = x[perm[:n_val]], y[perm[:n_val]], x[perm[n_val:]], y[perm[n_val:]]
    mean, std = xt.mean(), xt.std()
    norm = lambda t: (t / 255 - mean / 255) / (std / 255)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = ResNet20(a.se).to(memory_format=fmt)
    decay = [p for p in net.parameters() if p.dim() > 1]
    no_decay = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-5}, {"params": no_decay, "weight_decay": 0}],
                          lr=0.1, momentum=0.9, nesterov=True)
    batch, steps = 64, len(xt) // 64
    total = a.epochs * steps
    times = []
    for epoch in range(a.epochs):
        start = time.perf_counter()
        net.train()
        order = torch.randperm(len(xt))
        loss_sum = correct = 0
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch]
            padded = F.pad(xt[idx], (1, 1, 1, 1))
            oy, ox = torch.randint(3, (batch,)), torch.randint(3, (batch,))
            rows = (oy[:, None] + torch.arange(8))[:, :, None]
            cols = (ox[:, None] + torch.arange(8))[:, None, :]
            xb = norm(padded[torch.arange(batch)[:, None, None], 0, rows, cols].unsqueeze(1))
            xb = xb.contiguous(memory_format=fmt)
            yb = yt[idx]
            step = epoch * steps + s
            for g in opt.param_groups:
                g["lr"] = 0.1 * 0.5 * (1 + math.cos(math.pi * step / total))
            logits = net(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * batch
            correct += (logits.argmax(-1) == yb).sum().item()
        net.eval()
        with torch.no_grad():
            logits = net(norm(xv).contiguous(memory_format=fmt))
            val_loss = F.cross_entropy(logits, yv, reduction="sum").item() / len(xv)
            top1 = (logits.argmax(-1) == yv).float().mean().item()
            top5 = (logits.topk(5, -1).indices == yv[:, None]).any(-1).float().mean().item()
        times.append(time.perf_counter() - start)
    per_epoch = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(f"pytorch {torch.__version__} digits epoch se {str(a.se).lower()} channels_last "
          f"{str(a.channels_last).lower()} threads {torch.get_num_threads()}: {per_epoch:.4f} s/epoch "
          f"(train loss {loss_sum / (steps * batch):.3f}, val top-1 {top1:.3f}, top-5 {top5:.3f}, loss {val_loss:.3f})")


if __name__ == "__main__":
    main()
