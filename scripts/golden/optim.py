"""Golden values for darkmagic's optimizer tests, computed by torch.optim itself (and timm's
Lion, with betas 0.9, 0.99, RMSpropTF, alpha 0.9, eps 1e-8, momentum 0.9, and Lamb without its
global gradient-norm division).

Three steps on loss = sum(c * p**2) + sum(c * w**2), c = [1, 0.5], with p = [1, -2] (1-D, in a
group without weight decay, as darkmagic's exclude_1d) and w = [[0.5, 3]] (2-D, decayed),
lr 0.05, weight decay 0.1, float64. Writes tests/fixtures/optim_golden.json.
Run: .venv/bin/python scripts/golden/optim.py
"""
import json
import pathlib

import torch
from timm.optim import Lamb, Lion, RMSpropTF

CASES = {
    "sgd_momentum": lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9, nesterov=False),
    "sgd_nesterov": lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda g: torch.optim.Adam(g, lr=0.05, betas=(0.9, 0.999), eps=1e-8),
    "adamw": lambda g: torch.optim.AdamW(g, lr=0.05, betas=(0.9, 0.999), eps=1e-8),
    "lion": lambda g: Lion(g, lr=0.05, betas=(0.9, 0.99)),
    "rmsprop_tf": lambda g: RMSpropTF(g, lr=0.05, alpha=0.9, eps=1e-8, momentum=0.9),
    # Without Lamb's own global gradient-norm division (darkmagic: train.clip_grad).
    "lamb": lambda g: Lamb(g, lr=0.05, betas=(0.9, 0.999), eps=1e-8, max_grad_norm=None),
}

out = {}
for name, make in CASES.items():
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[0.5, 3.0]], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([1.0, 0.5], dtype=torch.float64)
    opt = make([{"params": [p], "weight_decay": 0.0}, {"params": [w], "weight_decay": 0.1}])
    for _ in range(3):
        opt.zero_grad()
        ((c * p * p).sum() + (c * w * w).sum()).backward()
        opt.step()
    out[name] = {"p": p.tolist(), "w": w.flatten().tolist()}
out["torch_version"] = torch.__version__
path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "optim_golden.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
