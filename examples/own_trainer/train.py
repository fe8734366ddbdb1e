"""A minimal training script of one's own, as darkmagic's checklist runs it: any script with a
command line and a printed (or written) metric will do. A small CNN on an image folder with
train/ and validation/ class folders; prints `val_acc=<fraction>` after each epoch.

Run: python train.py DATA --epochs 5 --lr 0.05 --weight-decay 5e-4 --seed 0
"""
import argparse

import torch
from torch import nn
from torchvision import datasets, transforms

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--lr", type=float, default=0.05)
p.add_argument("--weight-decay", type=float, default=5e-4)
p.add_argument("--label-smoothing", type=float, default=0.0)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.manual_seed(a.seed)

tf = transforms.Compose([transforms.Grayscale(), transforms.ToTensor()])
train = datasets.ImageFolder(f"{a.data}/train", tf)
val = datasets.ImageFolder(f"{a.data}/validation", tf)
loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True)
model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    nn.Linear(32, len(train.classes)),
)
opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.weight_decay)
loss_fn = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
for epoch in range(a.epochs):
    model.train()
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in torch.utils.data.DataLoader(val, batch_size=256))
    print(f"epoch {epoch + 1}: val_acc={correct / len(val):.4f}")
