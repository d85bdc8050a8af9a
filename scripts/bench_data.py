"""Images per second of the two CIFAR input pipelines (augmentation + normalisation + batching).

    python scripts/bench_data.py [--device cuda] [--images 10000] [--workers 0,2]

`standard`: torch's DataLoader over ArrayDataset (one image per __getitem__), with each worker
count; `device`: DeviceLoader, the split held on the device and augmented there in batches.
Prints a table and writes JSON (default results/bench_data.json).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from topk_repro.data.arrays import ArrayDataset, DeviceLoader
from topk_repro.engine.loaders import build_loader


def images_per_second(loader, device: str, count: int) -> float:
    for _ in loader:  # warm-up epoch (worker start-up, allocations)
        break
    started = time.perf_counter()
    seen = 0
    for images, _ in loader:
        images = images.to(device, non_blocking=True)
        seen += len(images)
    if device == "cuda":
        torch.cuda.synchronize()
    assert seen == count
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="0,2")
    parser.add_argument("--out", default="results/bench_data.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    dataset = ArrayDataset(images, rng.integers(0, 100, args.images), train=True)
    device = torch.device(args.device)
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        loader = build_loader(
            dataset,
            train=True,
            batch_size=args.batch_size,
            loader="standard",
            num_workers=workers,
            device=device,
            seed=0,
        )
        rate = images_per_second(loader, args.device, args.images)
        rows.append({"path": "standard", "workers": workers, "images_per_s": rate})
    loader = DeviceLoader(dataset, args.batch_size, shuffle=True, device=device, seed=0)
    rows.append(
        {
            "path": "device",
            "workers": 0,
            "images_per_s": images_per_second(loader, args.device, args.images),
        }
    )
    print(
        f"{args.images} CIFAR-size images, batch {args.batch_size}, device {args.device}, "
        f"{torch.get_num_threads()} threads"
    )
    for row in rows:
        print(f"  {row['path']:>8}  workers {row['workers']}  {row['images_per_s']:10.0f} images/s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"device": args.device, "batch_size": args.batch_size, "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
