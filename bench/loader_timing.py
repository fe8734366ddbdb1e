"""Shared by the torchvision reference scripts: how a DataLoader's throughput is measured."""
import time


def images_per_sec(dl):
    """Images per second over one epoch of `dl`, after a warm-up epoch (which starts the
    workers and fills the page cache)."""
    for _ in dl:
        pass
    start = time.perf_counter()
    n = sum(x.shape[0] for x, _ in dl)
    return n / (time.perf_counter() - start)
