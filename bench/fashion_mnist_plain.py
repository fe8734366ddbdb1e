"""`recipes/fashion-mnist-plain.toml` written as a plain PyTorch loop: what a repository without
the article's tricks does, for checking that darkmagic's plain recipe trains as PyTorch does.

Fashion-MNIST from Debian's `dataset-fashion-mnist` IDX files, 10% of each class of the training
split held out for validation, per-channel normalisation, no augmentation, CIFAR ResNet-20 with
ReLU everywhere and no SE (the last batch norm of each block zero-initialised, as darkmagic),
channels-last, bfloat16 autocast, SGD with momentum 0.9 (not Nesterov) and weight decay 5e-5 on
>= 2-D weights only, no label smoothing, batch 128 (last partial batch dropped), learning rate
0.1 decayed x0.1 at half and at three quarters of the steps, no warm-up, no EMA. After every
epoch the validation top-1; at the end the test top-1 and the wall time (data loading included).
Usage: python bench/fashion_mnist_plain.py [--epochs 12] [--seed 0] [--threads 2]
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from digits_epoch import ResNet20
from fashion_mnist_cpu import evaluate, load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (xt, yt), (xv, yv), (xs, ys), norm = load(a.seed, 0.1)
    net = ResNet20(se=False, leaky=False)
    for block in net.blocks:
        nn.init.zeros_(block.bn2.weight)
    net = net.to(memory_format=torch.channels_last)
    decay = [p for p in net.parameters() if p.dim() > 1]
    no_decay = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-5}, {"params": no_decay, "weight_decay": 0}],
                          lr=0.1, momentum=0.9)
    batch, steps = 128, len(xt) // 128
    total = a.epochs * steps
    for epoch in range(a.epochs):
        net.train()
        order = torch.randperm(len(xt))
        for s in range(steps):
            step = epoch * steps + s
            lr = 0.1 * 0.1 ** sum(step >= m * total for m in (0.5, 0.75))
            for g in opt.param_groups:
                g["lr"] = lr
            idx_b = order[s * batch:(s + 1) * batch]
            xb = norm(xt[idx_b]).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = F.cross_entropy(net(xb).float(), yt[idx_b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        v, _ = evaluate(net, xv, yv, norm)
        print(f"epoch {epoch + 1}: val {v:.4f} ({time.perf_counter() - start:.1f} s)", flush=True)
    t, _ = evaluate(net, xs, ys, norm)
    print(f"pytorch {torch.__version__} fashion-mnist-plain seed {a.seed} epochs {a.epochs} threads {torch.get_num_threads()}: "
          f"val {v:.4f} test {t:.4f}, wall {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
