#!/usr/bin/env bash
# CIFAR train transform with AutoAugment: darkmagic's pipeline (1 and 2 threads) against
# torchvision's DataLoader (num_workers 0 and 2), in one run. Usage: bench/augment_cifar.sh [images]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8192}
source bench/loader_vs_torchvision.sh
loader_vs_torchvision bench/augment_cifar.py "--images $n" "--images $n"
