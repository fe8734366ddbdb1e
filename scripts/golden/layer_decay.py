"""Reference layer-wise learning-rate decay for darkmagic's test: timm's
param_groups_layer_decay on its resnet18 or efficientnet_b0 (10 classes), layer_decay 0.7.
Writes OUT_DIR/layer_decay.json: parameter name -> lr_scale.
Run: .venv/bin/python scripts/golden/layer_decay.py OUT_DIR [resnet18|efficientnet_b0]
"""
import json
import pathlib
import sys

import timm
from timm.optim._param_groups import param_groups_layer_decay

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
arch = sys.argv[2] if len(sys.argv) > 2 else "resnet18"
model = timm.create_model(arch, num_classes=10)
groups = param_groups_layer_decay(model, weight_decay=0.05, layer_decay=0.7)
by_param = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
scales = {name: by_param[id(p)] for name, p in model.named_parameters()}
(out / "layer_decay.json").write_text(json.dumps(scales, indent=1))
print(f"wrote {out}")
