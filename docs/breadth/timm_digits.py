"""The digits in plain PyTorch with timm's efficientnet_b0 (1 input channel, dropout 0.2):
AdamW (weight decay 0.05) at a constant learning rate, batch 64, cross-entropy with label
smoothing 0.1, no augmentation; 1617 training and 180 validation images of a random split.
A cross-check of darkmagic's EfficientNet-B0 training on the same recipe (docs/breadth/README.md).
Run: .venv/bin/python docs/breadth/timm_digits.py [LR] [EPOCHS]
"""
import gzip
import sys

import numpy as np
import timm
import torch
import torch.nn.functional as F

torch.manual_seed(0)
lr = float(sys.argv[1]) if len(sys.argv) > 1 else 1e-3
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 4
rows = np.loadtxt(gzip.open("data/digits.csv.gz"), delimiter=",")
x = torch.tensor(rows[:, :64], dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
x = (x - x.mean()) / x.std()
y = torch.tensor(rows[:, 64], dtype=torch.long)
perm = torch.randperm(len(x))
train, val = perm[:1617], perm[1617:]
model = timm.create_model("efficientnet_b0", num_classes=10, in_chans=1, drop_rate=0.2)
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
for epoch in range(1, epochs + 1):
    model.train()
    order = train[torch.randperm(len(train))]
    steps, loss_sum, correct = 0, 0.0, 0
    for i in range(0, len(order) - 63, 64):
        b = order[i : i + 64]
        out = model(x[b])
        loss = F.cross_entropy(out, y[b], label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps, loss_sum = steps + 1, loss_sum + loss.item()
        correct += (out.argmax(1) == y[b]).sum().item()
    model.eval()
    with torch.no_grad():
        acc = (model(x[val]).argmax(1) == y[val]).float().mean().item()
    print(f"epoch {epoch}: train loss {loss_sum / steps:.3f}, train acc {correct / (64 * steps):.3f}, val acc {acc:.3f}")
