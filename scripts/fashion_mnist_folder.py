"""Writes part of Fashion-MNIST (Debian's dataset-fashion-mnist package, installed by
scripts/setup.sh) as an image folder for trainers that read folders, such as timm's train.py:
OUT/train/<class>/<i>.png and OUT/validation/<class>/<i>.png, the first N_TRAIN training images
and the first N_VAL test images, 28x28 gray PNGs.

Run: .venv/bin/python scripts/fashion_mnist_folder.py OUT [N_TRAIN] [N_VAL]
"""
import gzip
import pathlib
import sys

import numpy as np
from PIL import Image

SRC = pathlib.Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def idx(name):
    data = gzip.open(SRC / name).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


out = pathlib.Path(sys.argv[1])
n_train = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
n_val = int(sys.argv[3]) if len(sys.argv) > 3 else 500
for split, prefix, n in [("train", "train", n_train), ("validation", "t10k", n_val)]:
    images, labels = idx(f"{prefix}-images-idx3-ubyte.gz"), idx(f"{prefix}-labels-idx1-ubyte.gz")
    for i in range(n):
        d = out / split / CLASSES[labels[i]]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(d / f"{i}.png")
print(f"wrote {out}: {n_train} training and {n_val} validation images")
