r"""Truncated top-k entropy (`loss=truncated_topk_entropy`; Lapin, Hein, Schiele, CVPR 2016;
the LML paper's Ent_tr):

    L(s, y) = log(1 + sum_{j in J_y} exp(s_j - s_y)),

J_y the C - k smallest scores among the classes other than y: the k - 1 largest other scores
are left out, so a label among the top k costs little.  k = 1 is cross-entropy.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from topk_repro.config.components import LossSettings
from topk_repro.losses.cross_entropy import average_probabilities
from topk_repro.losses.function_loss import FunctionLoss
from topk_repro.losses.topk_svm import check_k


def truncated_topk_entropy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Batch mean of the loss for (B, C) scores (computed in float32) and (B,) labels."""
    scores = logits.float()
    true = scores.gather(1, labels[:, None])
    others = scores.scatter(1, labels[:, None], float("-inf"))
    if k > 1:  # leave out the k - 1 largest other scores
        largest = others.topk(k - 1, dim=1).indices
        others = others.scatter(1, largest, float("-inf"))
    return F.softplus(torch.logsumexp(others - true, dim=1)).mean()


@dataclass
class Settings(LossSettings):
    k: int


def label(values: Mapping) -> str:
    return f"Ent-tr k={int(values['k'])}"


def check(cfg, num_classes: int) -> None:
    check_k(cfg, num_classes)


def build(cfg, data):
    return FunctionLoss(truncated_topk_entropy, k=cfg.k), average_probabilities
