"""torchvision reference for `darkmagic bench augment`: the CIFAR train transform
(pad 4 + random crop 32, horizontal flip, AutoAugment CIFAR10 policy, to tensor, normalise)
through a DataLoader, batch 128, on N random 32x32 RGB uint8 images held in memory as arrays.
Prints images per second over one epoch after a warm-up epoch.
"""
import argparse

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from loader_timing import images_per_sec


class Arrays(Dataset):
    def __init__(self, n):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g)
        self.tf = T.Compose([
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.AutoAugment(T.AutoAugmentPolicy.CIFAR10),
            T.ToTensor(),
            T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
        ])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = Image.fromarray(self.x[i].numpy())  # as torchvision.datasets.CIFAR10 does
        return self.tf(img), 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    ds = Arrays(a.images)
    dl = DataLoader(ds, batch_size=128, num_workers=a.workers, persistent_workers=a.workers > 0)
    ips = images_per_sec(dl)
    print(f"torchvision DataLoader num_workers={a.workers}: {ips:.1f} images/s")


if __name__ == "__main__":
    main()
