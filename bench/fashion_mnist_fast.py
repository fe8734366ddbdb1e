"""`recipes/fashion-mnist-cpu-fast.toml` (and, with `--epochs 10 --lr 0.02`, the GPU draft
`recipes/fashion-mnist-gpu-fast.toml` run on the CPU) written as a plain PyTorch loop: the
reference of its time-to-accuracy benchmark (darkmagic's time / this loop's).

What a PyTorch user would write for the same recipe, with darkmagic's semantics (each choice cites
the darkmagic source it follows): Fashion-MNIST from Debian's `dataset-fashion-mnist` IDX files,
2% of each class of the training split held out for validation, per-channel normalisation by the
training split's statistics (bench/fashion_mnist_cpu.py's `load`); CIFAR ResNet-20 without SE
(bench/digits_epoch.py's: leaky ReLU in the stem and the stride-2 blocks), convolutions
initialised as torchvision's (Kaiming normal, fan-out), the last batch norm of each block
zero-initialised; the stem's 16 filters set by patch whitening from the first 5,000 (normalised)
training images; channels-last, bfloat16 autocast; torch.optim.Muon (momentum 0.9, Nesterov,
adjust_lr_fn "match_rms_adamw", its Newton-Schulz iteration in float32 as darkmagic's) for the
hidden weights (every >= 2-D weight outside the stem and the classifier, a filter bank as a
matrix of one row per output channel) and torch.optim.AdamW (betas 0.9/0.999, eps 1e-8) for the
rest, one learning rate (0.03), decoupled weight decay 0.05 on >= 2-D weights only; label
smoothing 0.1; batch 512 (last partial batch dropped); zero padding 2 + random 28x28 crop and
the alternating horizontal flip (a coin per image at epoch 1, every image flipped over at each
later epoch); a linear warm-up from 1e-4 over the first epoch then a cosine to 0 at the last
step, per step; an EMA of the weights and batch-norm statistics (decay 0.99 with timm's
warm-up). After every epoch the validation top-1 of the weights, of the weights with flip +
translate test-time augmentation, and of the EMA (evaluation batch 2000). At the end the test
top-1 of the same three (darkmagic's result.json `test_acc`, `test_acc_tta`, `test_acc_ema`), the
seconds of training and evaluation (as darkmagic's result.json `wall_seconds`: the epochs and
the test evaluation) and the wall time of the whole process (imports and data loading included).
Usage: python bench/fashion_mnist_fast.py [--epochs 8] [--seed 0] [--threads 2] [--batch 512]
    [--lr 0.03] [--weight-decay 0.05] [--label-smoothing 0.1] [--ema 0.99] [--val-fraction 0.02]
    [--train-subset N] [--muon-ns fp32|bf16] [--print-schedule]
(run from bench/, as bench/fashion_mnist_cpu.py; --train-subset: smoke tests only).
The same recipe with darkmagic:
    darkmagic train --recipe recipes/fashion-mnist-cpu-fast.toml --threads 2 --run-dir runs/fashion-mnist-cpu-fast
(bench/fashion_mnist_fast.sh times both and trains darkmagic's other seeds)
"""
import time

START = time.perf_counter()  # before torch's import: the whole process's wall time

import argparse  # noqa: E402
import copy  # noqa: E402
import math  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

from digits_epoch import ResNet20  # noqa: E402
from fashion_mnist_cpu import evaluate, load  # noqa: E402

# src/model/whiten.rs: EPS, MAX_PATCHES; src/train/mod.rs: the first 5,000 training images.
WHITEN_EPS = 5e-4
WHITEN_MAX_PATCHES = 5_000_000
WHITEN_IMAGES = 5000
# crates/base/src/recipe/schedule.rs, ScheduleConfig's defaults: warmup_lr_init, lr_min.
WARMUP_LR_INIT = 1e-4
LR_MIN = 0.0
# crates/base/src/recipe/optim.rs, OptimConfig's defaults: darkmagic's Muon takes SGD's momentum
# and Nesterov (not torch.optim.Muon's 0.95); AdamW's betas and eps.
MOMENTUM = 0.9
BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def whiten_stem(conv, images):
    """src/model/whiten.rs `whiten_stem`: `P` the `c k k` patches of `images` (N, C, H, W, already
    normalised) at every position, stride 1, no padding, in float64; `C = P^T P / n` (not
    centred); its eigenpairs by decreasing eigenvalue; the first `2m` filters of `conv` (m = min(out
    / 2, c k k)) set to `v_i / sqrt(l_i + 5e-4)` for the m leading pairs, then their negatives.
    At most 5 million patches (all of 5,000 28x28 images: 3.38 million)."""
    out, c, k, _ = conv.weight.shape
    per_image = max((images.shape[2] - k + 1) * (images.shape[3] - k + 1), 1)
    used = min(max(WHITEN_MAX_PATCHES // per_image, 1), len(images))
    dim = c * k * k
    total, n = torch.zeros(dim, dim, dtype=torch.float64), 0
    for chunk in images[:used].double().split(64):  # as whiten.rs `covariance`, 64 images at a time
        p = chunk.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, dim)
        total += p.T @ p
        n += len(p)
    values, vectors = torch.linalg.eigh(total / n, UPLO="U")  # ascending
    m = min(out // 2, dim)
    lead = vectors[:, dim - m:].flip(1).T
    scaled = lead * (values[dim - m:].flip(0) + WHITEN_EPS).rsqrt()[:, None]
    filters = torch.cat([scaled, -scaled]).reshape(2 * m, c, k, k)
    with torch.no_grad():
        conv.weight[:2 * m].copy_(filters.to(conv.weight.dtype))
    return f"whitened {2 * m} of the {out} stem filters from {n} patches of {used} training images"


def lr_schedule(peak, epochs, steps_per_epoch, warmup_epochs=1.0):
    """The learning rate of each optimizer step, as crates/base/src/schedule.rs `LrSchedule` with
    `regime = "cosine"`: a linear warm-up from 1e-4 over round(warmup_epochs * steps) steps (a
    warm-up as long as the run leaves the cosine 2 steps), then a cosine from the peak at the
    first step after warm-up to lr_min (0) at the last step of the run."""
    total = epochs * steps_per_epoch
    warm = round(warmup_epochs * steps_per_epoch)
    if warm >= total:
        warm = max(total - 2, 0)
    length = total - warm

    def lr(step):
        if step < warm:
            return WARMUP_LR_INIT + step / warm * (peak - WARMUP_LR_INIT)
        x = 1.0 if length <= 1 else (step - warm) / (length - 1)
        return LR_MIN + (peak - LR_MIN) * (1 + math.cos(math.pi * x)) / 2

    return [lr(s) for s in range(total)]


class FiltersAsMatrix(nn.Module):
    """A convolution's filters (out, in, kh, kw), channels-last, kept as the matrix (out, kh kw in)
    they are in memory, so that torch.optim.Muon (2-D parameters only) takes them whole: the
    matrix of one row per output channel that darkmagic's Muon orthogonalises (src/optim/muon.rs),
    its columns permuted, which leaves the Newton-Schulz update and the scale sqrt(max(rows,
    cols)) unchanged."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, matrix):
        o, i, kh, kw = self.shape
        return matrix.view(o, kh, kw, i).permute(0, 3, 1, 2)

    def right_inverse(self, filters):
        return filters.permute(0, 2, 3, 1).reshape(filters.shape[0], -1)


def newton_schulz_fp32(grad, ns_coefficients, ns_steps, eps):
    """torch.optim._muon._zeropower_via_newtonschulz in float32 (the parameters' dtype) instead
    of bfloat16, as darkmagic's `newton_schulz` (src/optim/muon.rs; its parity test,
    scripts/golden/optim.py, swaps in float64 the same way)."""
    a, b, c = ns_coefficients
    x = grad.float()
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=512, help="train.batch_size")
    ap.add_argument("--lr", type=float, default=0.03, help="optim.lr")
    ap.add_argument("--weight-decay", type=float, default=0.05, help="optim.weight_decay")
    ap.add_argument("--label-smoothing", type=float, default=0.1, help="loss.label_smoothing")
    ap.add_argument("--ema", type=float, default=0.99, help="train.ema_decay")
    ap.add_argument("--val-fraction", type=float, default=0.02, help="data.val_fraction")
    ap.add_argument("--train-subset", type=int, help="the first N images of the training split (smoke tests)")
    ap.add_argument("--muon-ns", choices=["fp32", "bf16"], default="fp32",
                    help="Muon's Newton-Schulz dtype: fp32 as darkmagic, bf16 as torch.optim.Muon's own")
    ap.add_argument("--print-schedule", action="store_true",
                    help="print step,epoch,lr,weight_decay per step (as `darkmagic schedule`) and exit")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (xt, yt), (xv, yv), (xs, ys), norm = load(a.seed, a.val_fraction)
    if a.train_subset:
        xt, yt = xt[:a.train_subset], yt[:a.train_subset]
    batch, eval_batch = a.batch, 2000
    steps = max(len(xt) // batch, 1)  # crates/base/src/recipe/mod.rs `steps_per_epoch`
    lrs = lr_schedule(a.lr, a.epochs, steps)
    if a.print_schedule:
        print("step,epoch,lr,weight_decay")
        for s, lr in enumerate(lrs):
            print(f"{s},{s / steps:.4f},{lr:.6e},{a.weight_decay:.6e}")
        return
    if a.muon_ns == "fp32":
        torch.optim._muon._zeropower_via_newtonschulz = newton_schulz_fp32

    net = ResNet20(se=False)
    for mod in net.modules():
        if isinstance(mod, nn.Conv2d):  # src/model/layers.rs `KAIMING_FAN_OUT`
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    for block in net.blocks:
        nn.init.zeros_(block.bn2.weight)  # src/model/resnet.rs: timm's zero_init_last
    # src/train/mod.rs: the first 5,000 images of the training split as evaluation batches
    # (normalised, no augmentation), after the model's initialisation.
    print(whiten_stem(net.stem[0], norm(xt[:WHITEN_IMAGES])), flush=True)
    net = net.to(memory_format=torch.channels_last)
    # src/optim/mod.rs `Optimizer::new`: Muon for the hidden weights (>= 2-D, outside the stem,
    # layer group 0, and the classifier, the last); AdamW for the rest; weight decay on >= 2-D
    # parameters only (`optim.exclude_1d`, on by default).
    hidden = [m for m in net.blocks.modules() if isinstance(m, nn.Conv2d)]
    for conv in hidden:
        parametrize.register_parametrization(conv, "weight", FiltersAsMatrix(conv.weight.shape))
    muon_params = [conv.parametrizations.weight.original for conv in hidden]
    taken = {id(p) for p in muon_params}
    rest = [p for p in net.parameters() if id(p) not in taken]
    muon = torch.optim.Muon(muon_params, lr=a.lr, weight_decay=a.weight_decay, momentum=MOMENTUM,
                            nesterov=True, adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW([{"params": [p for p in rest if p.dim() > 1], "weight_decay": a.weight_decay},
                               {"params": [p for p in rest if p.dim() <= 1], "weight_decay": 0.0}],
                              lr=a.lr, betas=BETAS, eps=ADAM_EPS)
    opts = [adamw, muon]
    # src/train/ema.rs: every floating-point variable (batch-norm statistics included), from the
    # whitened start, d = min(decay, (1 + n) / (10 + n)) at update n (timm's ModelEmaV3).
    ema = copy.deepcopy(net)
    ema_t = [t for t in ema.state_dict().values() if t.is_floating_point()]
    net_t = [t for t in net.state_dict().values() if t.is_floating_point()]
    # crates/data/src/augment/mod.rs `flipped`, "alternating": a coin per training image, then
    # flipped over at every odd epoch (epochs from 1).
    coin = torch.rand(len(xt)) < 0.5
    updates, run_seconds = 0, 0.0
    for epoch in range(a.epochs):
        epoch_start = time.perf_counter()
        net.train()
        order = torch.randperm(len(xt))
        loss_sum = correct = 0.0
        for s in range(steps):
            idx_b = order[s * batch:(s + 1) * batch]
            n = len(idx_b)
            # crates/data/src/augment/mod.rs `Placement`: zero padding (`augment.pad_mode`'s
            # default), offsets uniform in 0..=2 pad, rows first, then the flip of the crop.
            padded = F.pad(xt[idx_b], (2, 2, 2, 2))
            oy, ox = torch.randint(5, (n,)), torch.randint(5, (n,))
            rows = (oy[:, None] + torch.arange(28))[:, :, None]
            cols = (ox[:, None] + torch.arange(28))[:, None, :]
            xb = padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)
            flip = coin[idx_b] ^ (epoch % 2 == 1)
            xb[flip] = xb[flip].flip(3)
            xb = norm(xb).contiguous(memory_format=torch.channels_last)
            yb = yt[idx_b]
            lr = lrs[epoch * steps + s]
            for opt in opts:
                for g in opt.param_groups:
                    g["lr"] = lr
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = net(xb).float()
            loss = F.cross_entropy(logits, yb, label_smoothing=a.label_smoothing)
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()
            d = min(a.ema, (1 + updates) / (10 + updates))
            updates += 1
            with torch.no_grad():
                torch._foreach_lerp_(ema_t, net_t, 1 - d)
            # src/train/mod.rs `train_epoch`: the loss read every step (its divergence guard) and
            # the batch's accuracy counted.
            loss_sum += loss.item() * n
            correct += (logits.argmax(-1) == yb).sum().item()
        # src/train/mod.rs `fit`: validation after every epoch, of the weights with and without
        # test-time augmentation and of the EMA weights (no test-time augmentation).
        net.eval()
        ema.eval()
        v, vt = evaluate(net, xv, yv, norm, eval_batch, translate=True)
        ve, _ = evaluate(ema, xv, yv, norm, eval_batch, tta=False)
        run_seconds += time.perf_counter() - epoch_start
        print(f"epoch {epoch + 1}: lr {lr:.3e} train loss {loss_sum / (steps * batch):.4f} "
              f"acc {correct / (steps * batch):.4f} val {v:.4f} tta {vt:.4f} ema {ve:.4f} "
              f"({time.perf_counter() - START:.1f} s)", flush=True)
    # src/train/mod.rs `finish`: test_acc, test_acc_tta (the weights), test_acc_ema (the EMA's,
    # without test-time augmentation); src/eval/mod.rs `tta_scores` for the augmentation.
    test_start = time.perf_counter()
    t, tt = evaluate(net, xs, ys, norm, eval_batch, translate=True)
    te, _ = evaluate(ema, xs, ys, norm, eval_batch, tta=False)
    run_seconds += time.perf_counter() - test_start
    print(f"pytorch {torch.__version__} fashion-mnist-fast seed {a.seed} epochs {a.epochs} "
          f"threads {torch.get_num_threads()}: test {t:.4f} tta {tt:.4f} ema {te:.4f}, "
          f"training and evaluation {run_seconds:.1f} s, wall {time.perf_counter() - START:.1f} s")


if __name__ == "__main__":
    main()
