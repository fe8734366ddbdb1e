"""torchvision reference for `darkmagic bench augment --folder DIR`: the ImageNet train
transform (decode with PIL, RandomResizedCrop 224 bilinear, horizontal flip, AutoAugment
IMAGENET policy, to tensor, normalise) through ImageFolder and a DataLoader, batch 64.
Prints images per second over one epoch after a warm-up epoch.
"""
import argparse

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

from loader_timing import images_per_sec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", required=True)
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tf = T.Compose([
        T.RandomResizedCrop(224),
        T.RandomHorizontalFlip(),
        T.AutoAugment(T.AutoAugmentPolicy.IMAGENET),
        T.ToTensor(),
        T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
    ])
    ds = datasets.ImageFolder(a.folder, transform=tf)
    dl = DataLoader(ds, batch_size=64, shuffle=True, drop_last=True, num_workers=a.workers,
                    persistent_workers=a.workers > 0)
    ips = images_per_sec(dl)
    print(f"torchvision DataLoader num_workers={a.workers}: {ips:.1f} images/s")


if __name__ == "__main__":
    main()
