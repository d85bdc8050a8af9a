"""Seeded random configurations of the loss, and its per-row value and weighted gradient, for
the sweeps that compare implementations and precisions."""

import torch

from smooth_topk.functional import smooth_topk_svm


def loss_and_grad(scores, labels, k, tau, weight, alpha=1.0):
    """Per-row loss and the gradient of its `weight`-weighted sum."""
    scores = scores.clone().requires_grad_()
    loss = smooth_topk_svm(scores, labels, k, tau, alpha, reduction="none")
    (loss * weight).sum().backward()
    return loss.detach(), scores.grad


def random_cases(seed, count, classes, max_k, alphas, log10_spread, batch, dtype):
    """Seeded random configurations: (description, scores, labels, k, tau, alpha), with tau in
    [1e-3, 10], score spreads 10 ** log10_spread and, in half the cases, a tie at the top."""
    generator = torch.Generator().manual_seed(seed)

    def draw(choices):
        return choices[int(torch.randint(len(choices), (1,), generator=generator))]

    for _ in range(count):
        n = draw(classes)
        k = draw(list(range(1, min(n - 1, max_k) + 1)))
        tau = 10 ** float(torch.empty(1).uniform_(-3, 1, generator=generator))
        alpha = draw(alphas)
        spread = 10 ** float(torch.empty(1).uniform_(*log10_spread, generator=generator))
        scores = torch.randn(batch, n, generator=generator, dtype=dtype) * spread
        if draw([False, True]):
            scores[:, 1] = scores[:, 0]  # ties
        labels = torch.randint(0, n, (batch,), generator=generator)
        description = f"classes={n} k={k} tau={tau:.3g} alpha={alpha} spread={spread:.3g}"
        yield description, scores, labels, k, tau, alpha
