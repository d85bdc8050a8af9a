"""The loss by its definition: enumeration of every k-subset in float64 (slow, obviously right)."""

import itertools

import torch


def brute_force_loss(scores: torch.Tensor, label: int, k: int, tau: float, alpha: float):
    """L_{k,tau} by enumerating every k-subset, in float64 (the definition, nothing clever)."""
    scores = scores.double()
    all_terms, true_terms = [], []
    for subset in itertools.combinations(range(scores.shape[0]), k):
        mean = scores[list(subset)].mean()
        margin = 0.0 if label in subset else alpha
        all_terms.append((margin + mean) / tau)
        if label in subset:
            true_terms.append(mean / tau)
    return tau * (
        torch.logsumexp(torch.stack(all_terms), 0) - torch.logsumexp(torch.stack(true_terms), 0)
    )


def brute_force_batch(scores, labels, k, tau, alpha):
    return torch.stack(
        [brute_force_loss(scores[i], int(labels[i]), k, tau, alpha) for i in range(len(labels))]
    )
