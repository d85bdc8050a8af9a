"""Running loss and top-1/top-5 accuracy (percentages), reducible across processes."""

import torch
import torch.distributed as dist


class Meter:
    """Sums of loss, correct top-1, correct top-5 and count; `result` gives means and percents."""

    def __init__(self, device):
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)

    @torch.no_grad()
    def update(self, scores: torch.Tensor, labels: torch.Tensor, loss_sum: torch.Tensor | float):
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices
        hits = top == labels[:, None]
        self.sums += torch.stack(
            [
                torch.as_tensor(loss_sum, dtype=torch.float64, device=self.sums.device),
                hits[:, :1].any(1).sum().double(),
                hits.any(1).sum().double(),
                torch.tensor(float(len(labels)), dtype=torch.float64, device=self.sums.device),
            ]
        )

    def all_reduce(self) -> "Meter":
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)
        return self

    def result(self, prefix: str) -> dict:
        loss, top1, top5, count = self.sums.tolist()
        count = max(count, 1.0)
        return {
            f"{prefix}/loss": loss / count,
            f"{prefix}/top1": 100 * top1 / count,
            f"{prefix}/top5": 100 * top5 / count,
        }
