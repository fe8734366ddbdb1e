"""Reference binary cross-entropy for darkmagic's test: timm's BinaryCrossEntropy on seeded
logits (4x5), integer labels with smoothing 0.1 and 0.0, with and without target threshold 0.2,
and on soft targets (a mixed batch).

Writes OUT_DIR/bce.safetensors: `logits`, `labels`, `soft`, and the losses `loss.labels_s0.1`,
`labels_s0.1_t0.2`, `labels_s0`, `soft`, `soft_t0.2` (scalars).
Run: .venv/bin/python scripts/golden/bce.py OUT_DIR
"""
import pathlib
import sys

import torch
from safetensors.torch import save_file
from timm.loss import BinaryCrossEntropy

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
logits = torch.randn(4, 5) * 2
labels = torch.tensor([0, 3, 4, 1])
soft = torch.softmax(torch.randn(4, 5), -1)
saved = {"logits": logits, "labels": labels, "soft": soft}
for name, smoothing, thresh, target in [
    ("labels_s0.1", 0.1, None, labels),
    ("labels_s0.1_t0.2", 0.1, 0.2, labels),
    ("labels_s0", 0.0, None, labels),
    ("soft", 0.1, None, soft),
    ("soft_t0.2", 0.1, 0.2, soft),
]:
    saved[f"loss.{name}"] = BinaryCrossEntropy(smoothing=smoothing, target_threshold=thresh)(logits, target).reshape(1)
save_file(saved, str(out / "bce.safetensors"))
print(f"wrote {out}")
