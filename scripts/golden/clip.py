"""Reference gradient clipping for darkmagic's test: torch.nn.utils.clip_grad_norm_ and
clip_grad_value_, and timm's adaptive_clip_grad, on seeded parameters and gradients.

Writes OUT_DIR/clip.safetensors: `p1` (4x3x3x3), `p2` (5), `p3` (6x4) and their gradients
`g1`..`g3`, then the clipped gradients `norm.g1`.. (max norm 0.5), `value.g1`.. (0.01) and
`agc.g1`.. (clip factor 0.05).
Run: .venv/bin/python scripts/golden/clip.py OUT_DIR
"""
import pathlib
import sys

import torch
from safetensors.torch import save_file
from timm.utils.agc import adaptive_clip_grad

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
shapes = [(4, 3, 3, 3), (5,), (6, 4)]
params = [torch.randn(s) for s in shapes]
grads = [torch.randn(s) * 0.3 for s in shapes]
saved = {}
for i, (p, g) in enumerate(zip(params, grads), 1):
    saved[f"p{i}"], saved[f"g{i}"] = p, g
clips = {
    "norm": lambda ps: torch.nn.utils.clip_grad_norm_(ps, 0.5),
    "value": lambda ps: torch.nn.utils.clip_grad_value_(ps, 0.01),
    "agc": lambda ps: adaptive_clip_grad(ps, 0.05),
}
for name, clip in clips.items():
    ps = []
    for p, g in zip(params, grads):
        q = p.clone().requires_grad_(True)
        q.grad = g.clone()
        ps.append(q)
    clip(ps)
    for i, q in enumerate(ps, 1):
        saved[f"{name}.g{i}"] = q.grad.contiguous()
save_file(saved, str(out / "clip.safetensors"))
print(f"wrote {out}")
