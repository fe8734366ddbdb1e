"""The Python side of bench/dataset_readers.sh: reads one data set written by
scripts/dataset_formats.py with the library its users read it with, every image of both splits
decoded to a uint8 tensor, through a torch DataLoader (batch 256, `--workers` worker processes,
0 = in this process), and prints images per second, as `darkmagic bench read` does.

    .venv/bin/python bench/dataset_readers.py FORMAT DIR [--workers 0]

FORMAT: folder (torchvision's ImageFolder over DIR/folder/{train,test}), manifest (pandas reads
DIR/manifest.csv, PIL the images), parquet (Hugging Face `datasets.load_dataset("parquet")` over
DIR/parquet/data, images decoded by its Image feature), webdataset (`webdataset.WebDataset` over
DIR/webdataset/*.tar, `.decode("pil")`). The clock runs from building the dataset (listing,
`datasets`' conversion into its cache) to the last batch, as darkmagic's runs from listing to the
last decoded image; imports are outside it.
"""
import argparse
import glob
import os
import tempfile
import time

import torch
from PIL import Image
from torchvision.transforms import PILToTensor

to_tensor = PILToTensor()


def collate(batch):
    """Stacks (image tensor, label) pairs; images of one data set share one size."""
    return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch])


def folder(root):
    from torchvision.datasets import ImageFolder
    return [ImageFolder(os.path.join(root, "folder", s), transform=to_tensor) for s in ("train", "test")]


def manifest(root):
    import pandas as pd

    class Manifest(torch.utils.data.Dataset):
        def __init__(self, csv):
            self.rows = pd.read_csv(csv)
            self.classes = {c: i for i, c in enumerate(sorted(self.rows["label"].unique()))}

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, i):
            path, label = self.rows["image_path"][i], self.rows["label"][i]
            with Image.open(os.path.join(root, path)) as im:
                return to_tensor(im.convert(im.mode)), self.classes[label]

    return [Manifest(os.path.join(root, "manifest.csv"))]


def parquet(root):
    from datasets import load_dataset
    files = {s: sorted(glob.glob(os.path.join(root, "parquet", "data", f"{s}-*.parquet"))) for s in ("train", "test")}
    cache = tempfile.mkdtemp(prefix="hf-cache-")
    ds = load_dataset("parquet", data_files=files, cache_dir=cache)

    class Split(torch.utils.data.Dataset):
        def __init__(self, d):
            self.d = d

        def __len__(self):
            return len(self.d)

        def __getitem__(self, i):
            row = self.d[i]
            return to_tensor(row["image"]), row["label"]

    return [Split(ds[s]) for s in ("train", "test")]


def webdataset(root):
    import webdataset as wds
    shards = sorted(glob.glob(os.path.join(root, "webdataset", "*.tar")))
    ds = wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode("pil").to_tuple("png", "cls")
    return [ds.map_tuple(to_tensor, int)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("format", choices=["folder", "manifest", "parquet", "webdataset"])
    p.add_argument("dir")
    p.add_argument("--workers", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    n = 0
    for ds in globals()[a.format](a.dir):
        loader = torch.utils.data.DataLoader(ds, batch_size=256, num_workers=a.workers, collate_fn=collate)
        for images, _ in loader:
            n += images.shape[0]
    seconds = time.perf_counter() - start
    print(f"python read {a.format}: {n} images in {seconds:.3f} s: {n / seconds:.1f} images/s")


if __name__ == "__main__":
    main()
