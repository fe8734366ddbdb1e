"""Golden outputs of torchvision's AutoAugment operations on PIL images, for darkmagic's tests.

Inputs (each as an RGB image and as PIL's `convert("L")` of it):
- three real Fashion-MNIST images (Debian's dataset-fashion-mnist) stacked as the channels of a
  28x28 image (the first alone is the gray input);
- real photographs from data/photos (scripts/photos.sh) resized by PIL (bilinear) to sizes from
  8x8 to 127x200, odd and even, square and not, and cropped unresized up to 256x256.
Small images hide differences: on a 28x28 image a division by 256 and one by 255 agree for most
pixel counts, so every op is also checked on photographs with many pixels and rich histograms.

For every input, op, bin 0..9 and sign, `torchvision.transforms.autoaugment._apply_op` with
NEAREST interpolation and the default fill (0) gives the output (`<image>/<op>/<bin>/<sign>`,
uint8 HWC, magnitude as float64 `mag/...`; `input/<image>` is the input).

Random histograms: for the look-up-table ops (Equalize, AutoContrast, Posterize, Solarize), 2000
gray 1xN images with random histograms (1 to 256 used levels, 1 to 200000 pixels, with totals
placed on the boundaries of Pillow's integer divisions): `hist/<k>` holds the histogram (int64,
256), `lut/<op>/<k>` the value Pillow maps each level to (levels absent from the image: 0), and
`hmag/<op>/<k>` the magnitude (Posterize bits, Solarize threshold).

Writes OUT_DIR/ops.safetensors. Run: .venv/bin/python scripts/golden/autoaugment_ops.py OUT_DIR
"""
import gzip
import pathlib
import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import AutoAugment, _apply_op

root = pathlib.Path(__file__).resolve().parents[2] / "data" / "photos"
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)


def hwc(img):
    return torch.from_numpy(np.asarray(img).copy()).reshape(img.height, img.width, -1).contiguous()


def inputs():
    """The images every op is applied to, by name: RGB and gray versions of each."""
    raw = gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").read()
    planes = [np.frombuffer(raw[16 + i * 784 : 16 + (i + 1) * 784], dtype=np.uint8).reshape(28, 28) for i in range(3)]
    rgb = {"fmnist28": Image.fromarray(np.stack(planes, axis=-1), "RGB")}
    photo = lambda p: Image.open(root / p).convert("RGB")
    resized = [  # (name, photo, height, width)
        ("astronaut8", "space/astronaut.png", 8, 8),
        ("chelsea9x13", "cat/chelsea.png", 9, 13),
        ("coffee17", "coffee/coffee.png", 17, 17),
        ("astronaut32", "space/astronaut.png", 32, 32),
        ("chelsea32", "cat/chelsea.png", 32, 32),
        ("motorcycle32", "motorcycle/motorcycle_left.png", 32, 32),
        ("retina33", "microscopy/retina.jpg", 33, 33),
        ("coffee45x31", "coffee/coffee.png", 45, 31),
        ("chelsea64x48", "cat/chelsea.png", 64, 48),
        ("astronaut96", "space/astronaut.png", 96, 96),
        ("coffee96", "coffee/coffee.png", 96, 96),
        ("motorcycle127x200", "motorcycle/motorcycle_left.png", 127, 200),
    ]
    for name, path, h, w in resized:
        rgb[name] = photo(path).resize((w, h), Image.BILINEAR)
    crops = [  # (name, photo, top, left, height, width)
        ("coffee_crop57x100", "coffee/coffee.png", 3, 5, 57, 100),
        ("rocket_crop96", "space/rocket.jpg", 150, 200, 96, 96),
        ("chelsea_crop255x131", "cat/chelsea.png", 20, 37, 255, 131),
        ("astronaut_crop256", "space/astronaut.png", 100, 150, 256, 256),
    ]
    for name, path, top, left, h, w in crops:
        rgb[name] = photo(path).crop((left, top, left + w, top + h))
    images = {}
    for name, img in rgb.items():
        images[f"{name}_rgb"] = img
        images[f"{name}_gray"] = img.convert("L")
    images["fmnist28_gray"] = Image.fromarray(planes[0], "L")
    return images


tensors = {}
for name, pil in inputs().items():
    tensors[f"input/{name}"] = hwc(pil)
    space = AutoAugment()._augmentation_space(10, (pil.height, pil.width))
    for op, (mags, signed) in space.items():
        for b in range(10 if mags.ndim > 0 else 1):
            for sign in [1, -1] if signed else [1]:
                m = float(mags[b].item()) * sign if mags.ndim > 0 else 0.0
                res = _apply_op(pil, op, m, interpolation=InterpolationMode.NEAREST, fill=None)
                key = f"{name}/{op}/{b}/{'neg' if sign < 0 else 'pos'}"
                tensors[key] = hwc(res)
                tensors[f"mag/{key}"] = torch.tensor([m], dtype=torch.float64)


def random_histogram(rng):
    """A histogram with 1-256 used levels whose pixel count below the last used level is, half
    the time, next to a multiple of 255 or 256 (where `// 255` and `// 256` part ways), else
    log-uniform up to 200000."""
    n_used = int(rng.choice([1, 2, 3, rng.integers(1, 257)]))
    used = np.sort(rng.choice(256, size=n_used, replace=False))
    if rng.random() < 0.5:
        below = int(rng.choice([255, 256])) * int(rng.integers(1, 600)) + int(rng.integers(-2, 3))
    else:
        below = int(np.exp(rng.uniform(0, np.log(200_000))))
    below = max(below, n_used - 1)
    hist = np.zeros(256, dtype=np.int64)
    if n_used > 1:
        weights = rng.dirichlet(np.full(n_used - 1, float(rng.choice([0.1, 1.0, 10.0]))))
        hist[used[:-1]] = 1 + rng.multinomial(below - (n_used - 1), weights)
    hist[used[-1]] = int(rng.integers(1, 5000))
    return hist


rng = np.random.default_rng(0)
ops = {
    "Equalize": lambda: 0.0,
    "AutoContrast": lambda: 0.0,
    "Posterize": lambda: float(rng.integers(1, 9)),
    "Solarize": lambda: float(rng.choice([rng.integers(0, 257), rng.uniform(0, 256)])),
}
for k in range(2000):
    hist = random_histogram(rng)
    pixels = np.repeat(np.arange(256, dtype=np.uint8), hist)
    img = Image.frombytes("L", (len(pixels), 1), pixels.tobytes())
    first = np.concatenate([[0], np.cumsum(hist)[:-1]])
    tensors[f"hist/{k}"] = torch.from_numpy(hist)
    for op, draw in ops.items():
        m = draw()
        res = np.asarray(_apply_op(img, op, m, interpolation=InterpolationMode.NEAREST, fill=None)).reshape(-1)
        lut = np.where(hist > 0, res[np.minimum(first, len(res) - 1)], 0).astype(np.uint8)
        tensors[f"lut/{op}/{k}"] = torch.from_numpy(lut)
        tensors[f"hmag/{op}/{k}"] = torch.tensor([m], dtype=torch.float64)
save_file(tensors, str(out / "ops.safetensors"))
print(f"torchvision {torchvision.__version__}, Pillow {PIL.__version__}: {len(tensors)} tensors in {out}")
