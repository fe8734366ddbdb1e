"""Makes an ImageNet-like folder of JPEG files for bench/augment_imagenet.sh: N files (two class
folders) cut from the real photographs in data/photos (scripts/photos.sh), each a random crop of
80-100% of each side resized to a longer side of 500 px (ImageNet's typical 500x375/500x333),
saved at JPEG quality 90. Seeded, so every run writes the same files.
Run: .venv/bin/python bench/jpeg_folder.py OUT_DIR N
"""
import pathlib
import random
import sys

from PIL import Image

root = pathlib.Path(__file__).resolve().parents[1] / "data" / "photos"
out, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
photos = [Image.open(p).convert("RGB") for p in sorted(root.glob("*/*.*g"))]
rng = random.Random(0)
for i in range(n):
    img = photos[i % len(photos)]
    w, h = img.size
    cw, ch = int(w * rng.uniform(0.8, 1.0)), int(h * rng.uniform(0.8, 1.0))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    crop = img.crop((x, y, x + cw, y + ch))
    scale = 500 / max(cw, ch)
    crop = crop.resize((round(cw * scale), round(ch * scale)), Image.BILINEAR)
    d = out / f"c{i % 2}"
    d.mkdir(parents=True, exist_ok=True)
    crop.save(d / f"{i:05d}.jpg", quality=90)
print(f"{n} JPEG files in {out}")
