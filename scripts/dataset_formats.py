"""Writes one set of labelled PNG images in each format darkmagic reads from files that users'
libraries make: an image folder (PIL), a CSV manifest (pandas), Hugging Face parquet (`datasets`:
an `Image` feature with the bytes embedded and a `ClassLabel`) and WebDataset shards
(`webdataset.ShardWriter`). tests/datasets.rs and bench/dataset_readers.py use it.

    .venv/bin/python scripts/dataset_formats.py OUT [--count 48] [--size 12] [--fashion-mnist DIR] [--shard 16]

The images: `--count` noise images of `--size` pixels (RGB, two classes, `dark` and `light`), or
with `--fashion-mnist` the first `--count` training images of Fashion-MNIST's IDX files (gray,
28x28, its ten class names). The last sixth is the test split. Layout under OUT:
    folder/{train,test}/CLASS/NNNNNN.png
    manifest.csv                           image_path (into folder/), label (a name), split
    parquet/data/{train,test}-00000-of-00001.parquet
    webdataset/train-NNNNNN.tar ...        `--shard` samples each: NNNNNN.png + NNNNNN.cls
    webdataset/test-000000.tar
"""
import argparse
import gzip
import io
import os

import numpy as np
from PIL import Image

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def fashion_mnist(root, count):
    """The first `count` training images (28x28 u8) and labels of the IDX files under `root`."""
    def read(name, offset):
        for path in (os.path.join(root, name), os.path.join(root, name + ".gz")):
            if os.path.exists(path):
                opener = gzip.open if path.endswith(".gz") else open
                with opener(path, "rb") as f:
                    return np.frombuffer(f.read(), np.uint8)[offset:]
        raise SystemExit(f"{root}: no {name}[.gz]")
    images = read("train-images-idx3-ubyte", 16).reshape(-1, 28, 28)[:count]
    labels = read("train-labels-idx1-ubyte", 8)[:count]
    return [Image.fromarray(im) for im in images], [int(l) for l in labels], FASHION


def noise(count, size):
    """`count` RGB noise images, alternately dark and light."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(count):
        base = 40 if i % 2 == 0 else 200
        px = np.clip(base + rng.integers(-30, 30, (size, size, 3)), 0, 255).astype(np.uint8)
        images.append(Image.fromarray(px))
        labels.append(i % 2)
    return images, labels, ["dark", "light"]


def png(image):
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--count", type=int, default=48)
    p.add_argument("--size", type=int, default=12)
    p.add_argument("--shard", type=int, default=16)
    p.add_argument("--fashion-mnist")
    a = p.parse_args()
    images, labels, names = fashion_mnist(a.fashion_mnist, a.count) if a.fashion_mnist else noise(a.count, a.size)
    n_train = a.count - a.count // 6
    split = ["train" if i < n_train else "test" for i in range(a.count)]
    encoded = [png(im) for im in images]

    import pandas as pd
    rows = []
    for i, (data, label, s) in enumerate(zip(encoded, labels, split)):
        folder = names[label].replace("/", "-")
        rel = f"folder/{s}/{folder}/{i:06d}.png"
        os.makedirs(os.path.join(a.out, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(a.out, rel), "wb") as f:
            f.write(data)
        rows.append({"image_path": rel, "label": names[label], "split": s})
    pd.DataFrame(rows).to_csv(os.path.join(a.out, "manifest.csv"), index=False)

    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as ImageFeature
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=names)})
    os.makedirs(os.path.join(a.out, "parquet/data"), exist_ok=True)
    for s in ("train", "test"):
        idx = [i for i in range(a.count) if split[i] == s]
        ds = Dataset.from_dict(
            {"image": [{"bytes": encoded[i], "path": f"{i:06d}.png"} for i in idx], "label": [labels[i] for i in idx]},
            features=features,
        )
        ds.to_parquet(os.path.join(a.out, f"parquet/data/{s}-00000-of-00001.parquet"))

    import webdataset as wds
    os.makedirs(os.path.join(a.out, "webdataset"), exist_ok=True)
    with wds.ShardWriter(os.path.join(a.out, "webdataset/train-%06d.tar"), maxcount=a.shard, verbose=0) as sink:
        for i in range(n_train):
            sink.write({"__key__": f"{i:06d}", "png": encoded[i], "cls": labels[i]})
    with wds.TarWriter(os.path.join(a.out, "webdataset/test-000000.tar")) as sink:
        for i in range(n_train, a.count):
            sink.write({"__key__": f"{i:06d}", "png": encoded[i], "cls": labels[i]})


if __name__ == "__main__":
    main()
