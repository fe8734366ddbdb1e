"""Golden outputs of torchvision 0.28's resizing transforms on PIL images, for darkmagic's tests.

Inputs: real photographs from data/photos (scripts/photos.sh), RGB and one converted to gray by
PIL. For each, `F.resized_crop` on a few regions (downscaled, upscaled, non-square output) and
the evaluation transform `Resize(256)` + `CenterCrop(224)`, with BILINEAR and BICUBIC
interpolation; and PIL's decoding of the JPEG photographs (`decoded/<path under data/photos>`).
Writes OUT_DIR/resize.safetensors: `input/<name>` uint8 HWC images,
`crop/<name>/<interp>/<k>` outputs with `region/<name>/<k>` = [top, left, height, width,
out_height, out_width] (int64), and `eval/<name>/<interp>`.
Run: .venv/bin/python scripts/golden/resize.py OUT_DIR
"""
import pathlib
import sys

import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image
from safetensors.torch import save_file

root = pathlib.Path(__file__).resolve().parents[2] / "data" / "photos"
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
photos = {
    "astronaut": Image.open(root / "space/astronaut.png").convert("RGB"),
    "chelsea": Image.open(root / "cat/chelsea.png").convert("RGB"),
    "coffee": Image.open(root / "coffee/coffee.png").convert("RGB"),
    "motorcycle": Image.open(root / "motorcycle/motorcycle_left.png").convert("RGB"),
}
photos["chelsea_gray"] = photos["chelsea"].convert("L")
modes = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}


def hwc(img):
    t = torch.tensor(list(img.tobytes()), dtype=torch.uint8)
    return t.reshape(img.height, img.width, -1).contiguous()


tensors = {}
for name, img in photos.items():
    w, h = img.size
    tensors[f"input/{name}"] = hwc(img)
    regions = [
        (0, 0, h, w, 224, 224),
        (h // 4, w // 5, h // 2, w // 3, 224, 224),
        (10, 20, 37, 53, 224, 224),
        (5, 7, 100, 80, 64, 48),
        (3, 1, h - 3, w - 1, h - 3, 31),
    ]
    for k, (top, left, ch, cw, oh, ow) in enumerate(regions):
        tensors[f"region/{name}/{k}"] = torch.tensor([top, left, ch, cw, oh, ow], dtype=torch.int64)
        for mode_name, mode in modes.items():
            res = F.resized_crop(img, top, left, ch, cw, [oh, ow], interpolation=mode)
            tensors[f"crop/{name}/{mode_name}/{k}"] = hwc(res)
    for mode_name, mode in modes.items():
        res = T.Compose([T.Resize(256, interpolation=mode), T.CenterCrop(224)])(img)
        tensors[f"eval/{name}/{mode_name}"] = hwc(res)
# JPEG decoding: PIL's pixels of the JPEG photographs (libjpeg-turbo, default settings).
for name in ["space/rocket.jpg", "space/hubble_deep_field.jpg", "microscopy/retina.jpg"]:
    tensors[f"decoded/{name}"] = hwc(Image.open(root / name).convert("RGB"))
save_file(tensors, str(out / "resize.safetensors"))
print(f"torchvision {torchvision.__version__}: {len(tensors)} tensors in {out}")
