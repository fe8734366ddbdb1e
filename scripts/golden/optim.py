"""Golden values for darkmagic's optimizer tests, computed by torch.optim itself (and timm's
Lion, with betas 0.9, 0.99, RMSpropTF, alpha 0.9, eps 1e-8, momentum 0.9, and Lamb without its
global gradient-norm division).

Muon: its own case at the end (torch.optim.Muon with its Newton-Schulz iteration in float64).

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


def newton_schulz_f64(grad, ns_coefficients, ns_steps, eps):
    """torch.optim._muon._zeropower_via_newtonschulz with float64 in place of bfloat16."""
    a, b, c = ns_coefficients
    x = grad.double()
    if grad.size(0) > grad.size(1):
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


# Muon (torch.optim.Muon's own step, its Newton-Schulz in float64) on a 2x3 matrix and a 3x2
# one, AdamW on the 1-D p: lr 0.05, weight decay 0.1 (p undecayed), momentum 0.9, Nesterov,
# adjust_lr_fn "match_rms_adamw". Loss sum(c * x**2) with c = [1, 0.5, 2] along the last axis
# of the 2x3 and [1, 0.5] of the others.
torch.optim._muon._zeropower_via_newtonschulz = newton_schulz_f64
p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
wide = torch.tensor([[0.5, 3.0, -1.0], [2.0, -0.5, 1.0]], dtype=torch.float64, requires_grad=True)
tall = torch.tensor([[1.5, -1.0], [0.25, 2.0], [-3.0, 0.5]], dtype=torch.float64, requires_grad=True)
c3 = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
c2 = torch.tensor([1.0, 0.5], dtype=torch.float64)
muon = torch.optim.Muon([wide, tall], lr=0.05, weight_decay=0.1, momentum=0.9, nesterov=True,
                        adjust_lr_fn="match_rms_adamw")
adamw = torch.optim.AdamW([p], lr=0.05, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
for _ in range(3):
    muon.zero_grad()
    adamw.zero_grad()
    ((c2 * p * p).sum() + (c3 * wide * wide).sum() + (c2 * tall * tall).sum()).backward()
    muon.step()
    adamw.step()
out["muon"] = {"p": p.tolist(), "wide": wide.flatten().tolist(), "tall": tall.flatten().tolist()}
out["torch_version"] = torch.__version__
path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "optim_golden.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
