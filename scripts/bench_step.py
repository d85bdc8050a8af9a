"""Time one training step with cross-entropy and with the smooth top-k SVM, same model and data.

    python scripts/bench_step.py [--device cuda] [--model densenet40_40] [--batch 64] [--amp]

Issue 9's goal on a GPU: a DenseNet-BC 40-40 step (batch 64, bf16 autocast) with L_{5,1} within
2% of the same step with cross-entropy.  Forward, loss, backward and the SGD update on random
CIFAR-size images; median over `--steps` after warm-up (CUDA events on the GPU, wall clock on
the CPU), CE and the SVM loss timed in alternation.  Prints both and writes JSON.
"""

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from bench_loss import seconds  # the timing of the loss benchmark, CUDA events included
from smooth_topk import SmoothTopkSVM
from topk_repro.models import build_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"


def training_step(model, optimizer, images, labels, criterion, amp: bool):
    def step():
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
            loss = criterion(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="densenet40_40", help="a configs/model/ name")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--out", default="results/bench_step.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model(OmegaConf.load(CONFIGS / f"{args.model}.yaml"), 100).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(args.batch, 3, 32, 32, device=device)
    labels = torch.randint(0, 100, (args.batch,), device=device)
    losses = {
        "ce": lambda logits, y: F.cross_entropy(logits.float(), y),
        "smooth_topk_svm": SmoothTopkSVM(k=5, tau=1.0, alpha=1.0),
    }
    steps = {
        name: training_step(model, optimizer, images, labels, criterion, args.amp)
        for name, criterion in losses.items()
    }
    for _ in range(3):  # warm-up: allocations, cuDNN autotuning, the CPU kernel's first load
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(args.steps):
        for name, step in steps.items():
            times[name].append(1e3 * seconds(step, args.device))
    median = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    ratio = median["smooth_topk_svm"] / median["ce"]
    print(
        f"{args.model}, batch {args.batch}, {args.device}, amp {args.amp}: "
        f"CE {median['ce']:.2f} ms/step, L_5,1 {median['smooth_topk_svm']:.2f} ms/step, "
        f"ratio {ratio:.3f}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {**vars(args), "median_ms": median, "ratio": ratio}
    if args.device == "cuda":
        record["gpu"] = torch.cuda.get_device_name()
    out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
