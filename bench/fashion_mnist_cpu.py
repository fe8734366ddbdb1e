"""`recipes/fashion-mnist-cpu.toml` written as a plain PyTorch loop: the time-to-accuracy reference.

What a PyTorch user would write for the same recipe: Fashion-MNIST from Debian's
`dataset-fashion-mnist` IDX files, 10% of each class of the training split held out for
validation, per-channel normalisation, zero padding 2 + random 28x28 crop + horizontal flip per
image, CIFAR ResNet-20 (bench/digits_epoch.py's: timm's SE in every block, leaky ReLU in the stem
and the stride-2 blocks; here the last batch norm of each block zero-initialised), channels-last, bfloat16 autocast, SGD
Nesterov 0.9 with weight decay 5e-4 on >= 2-D weights only, label smoothing 0.1, batch 128 (last
partial batch dropped), a linear warm-up from 1e-4 over the first epoch then cosine to 0 per
step, an EMA of the weights (decay 0.999 with timm's warm-up), and after every epoch the
validation top-1 of the weights, of their horizontal-flip average and of the EMA. At the end:
test top-1 of the three, and the wall time of the whole run (data loading included).
Usage: python bench/fashion_mnist_cpu.py [--epochs 16] [--seed 0] [--threads 2] [--se off]
    [--val-fraction 0.02]   (recipes/fashion-mnist-cpu-tuned.toml: --se off --val-fraction 0.02 --epochs 17)
"""
import argparse
import copy
import gzip
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from digits_epoch import ResNet20

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(f"{DATA}/{name}.gz") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape).copy())


def split(x, y, seed, fraction):
    """`fraction` of each class held out for validation."""
    g = torch.Generator().manual_seed(seed)
    val = torch.cat([
        (lambda i: i[torch.randperm(len(i), generator=g)[: round(fraction * len(i))]])((y == c).nonzero().flatten())
        for c in range(10)
    ])
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[val] = False
    return x[keep], y[keep], x[val], y[val]


def load(seed, fraction):
    """Train, validation and test (images, labels) as float tensors, and the normalisation by
    the training split's mean and standard deviation."""
    x = idx("train-images-idx3-ubyte").unsqueeze(1).float()
    y = idx("train-labels-idx1-ubyte").long()
    xs, ys = idx("t10k-images-idx3-ubyte").unsqueeze(1).float(), idx("t10k-labels-idx1-ubyte").long()
    xt, yt, xv, yv = split(x, y, seed, fraction)
    mean, std = xt.mean() / 255, xt.std() / 255
    return (xt, yt), (xv, yv), (xs, ys), lambda t: (t / 255 - mean) / std


def evaluate(net, x, y, norm, batch=512, tta=True, translate=False):
    """Top-1 of the logits and of the softmax average with the horizontal flip (None with
    `tta=False`: the logits only). With `translate`, that flip average weighs half and the same
    average for the images shifted one pixel down-right and up-left (reflect padding) a quarter
    each: darkmagic's `augment.tta_translate` (src/eval/mod.rs, `Evaluator::tta_scores`)."""
    hits = flip_hits = 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for s in range(0, len(x), batch):
            xb = norm(x[s:s + batch]).contiguous(memory_format=torch.channels_last)
            p = net(xb).float().softmax(-1)
            hits += (p.argmax(-1) == y[s:s + batch]).sum().item()
            if not tta:
                continue
            mirrored = lambda v, pv: (pv + net(v.flip(3)).float().softmax(-1)) / 2
            pf = mirrored(xb, p)
            if translate:
                h, w = xb.shape[2:]
                padded = F.pad(xb, (1, 1, 1, 1), mode="reflect")
                shifted = [padded[:, :, at:at + h, at:at + w].contiguous(memory_format=torch.channels_last)
                           for at in (0, 2)]
                pf = pf * 0.5 + sum(mirrored(v, net(v).float().softmax(-1)) for v in shifted) * 0.25
            flip_hits += (pf.argmax(-1) == y[s:s + batch]).sum().item()
    return hits / len(x), (flip_hits / len(x) if tta else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--se", choices=["on", "off"], default="on", help="SE in every block (model.se)")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="data.val_fraction")
    a = ap.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (xt, yt), (xv, yv), (xs, ys), norm = load(a.seed, a.val_fraction)
    net = ResNet20(se=a.se == "on")
    for block in net.blocks:
        nn.init.zeros_(block.bn2.weight)  # as darkmagic (timm's zero_init_last)
    net = net.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(net)
    decay = [p for p in net.parameters() if p.dim() > 1]
    no_decay = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                          lr=a.lr, momentum=0.9, nesterov=True)
    batch, steps = 128, len(xt) // 128
    total, warm = a.epochs * steps, steps
    updates = 0
    for epoch in range(a.epochs):
        net.train()
        order = torch.randperm(len(xt))
        for s in range(steps):
            idx_b = order[s * batch:(s + 1) * batch]
            padded = F.pad(xt[idx_b], (2, 2, 2, 2))
            oy, ox = torch.randint(5, (batch,)), torch.randint(5, (batch,))
            rows = (oy[:, None] + torch.arange(28))[:, :, None]
            cols = (ox[:, None] + torch.arange(28))[:, None, :]
            xb = padded[torch.arange(batch)[:, None, None], 0, rows, cols].unsqueeze(1)
            flip = torch.rand(batch) < 0.5
            xb[flip] = xb[flip].flip(3)
            xb = norm(xb).contiguous(memory_format=torch.channels_last)
            step = epoch * steps + s
            lr = (1e-4 + step / warm * (a.lr - 1e-4) if step < warm
                  else 0.5 * a.lr * (1 + math.cos(math.pi * (step - warm) / (total - warm))))
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = F.cross_entropy(net(xb).float(), yt[idx_b], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            d = min(0.999, (1 + updates) / (10 + updates))
            updates += 1
            with torch.no_grad():
                for e, p in zip(ema.state_dict().values(), net.state_dict().values()):
                    e.copy_(e * d + p * (1 - d)) if e.is_floating_point() else e.copy_(p)
        net.eval()
        ema.eval()
        v, vf = evaluate(net, xv, yv, norm)
        ve, _ = evaluate(ema, xv, yv, norm)
        print(f"epoch {epoch + 1}: val {v:.4f} flip {vf:.4f} ema {ve:.4f} ({time.perf_counter() - start:.1f} s)", flush=True)
    t, tf = evaluate(net, xs, ys, norm)
    te, _ = evaluate(ema, xs, ys, norm)
    print(f"pytorch {torch.__version__} fashion-mnist seed {a.seed} epochs {a.epochs} threads {torch.get_num_threads()}: "
          f"test {t:.4f} flip {tf:.4f} ema {te:.4f}, wall {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
