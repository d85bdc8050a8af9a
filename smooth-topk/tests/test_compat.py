"""The reference-compatible classes against the loss's definition (brute force), as their users
call them: constructor signatures, defaults, batch mean, device moves."""

import pickle

import pytest
import torch

from brute_force import brute_force_batch
from smooth_topk import compat


def inputs(classes: int, batch: int = 6, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, classes, generator=generator, dtype=torch.float64) * 3
    return scores, torch.randint(0, classes, (batch,), generator=generator)


def test_smooth_top1_for_two_classes_as_clam_uses_it():
    scores, labels = inputs(2)
    criterion = compat.SmoothTop1SVM(n_classes=2)
    # tau * log sum_j exp((alpha [j != y] + s_j - s_y) / tau), alpha = 1, tau = 1, batch mean
    expected = torch.stack(
        [
            torch.logsumexp(scores[i] + (torch.arange(2) != labels[i]) - scores[i, labels[i]], 0)
            for i in range(len(labels))
        ]
    ).mean()
    torch.testing.assert_close(criterion(scores, labels), expected)


@pytest.mark.parametrize("alpha,tau,k", [(None, 1.0, 5), (0.5, 0.1, 3), (2.0, 10.0, 1)])
def test_smooth_topk_matches_the_definition(alpha, tau, k):
    scores, labels = inputs(8)
    criterion = compat.SmoothTopkSVM(8, alpha=alpha, tau=tau, k=k)
    margin = 1.0 if alpha is None else alpha
    expected = brute_force_batch(scores, labels, k, tau, margin).mean()
    torch.testing.assert_close(criterion(scores, labels), expected, rtol=1e-9, atol=1e-12)


def test_max_topk_is_the_hard_hinge():
    scores, labels = inputs(8)
    for k in (1, 3):
        others = scores.scatter(1, labels[:, None], float("-inf"))
        kth = others.topk(k, 1).values[:, -1]
        true = scores.gather(1, labels[:, None]).squeeze(1)
        expected = torch.clamp(0.7 + (kth - true) / k, min=0).mean()
        criterion = compat.MaxTop1SVM(8, alpha=0.7) if k == 1 else compat.MaxTopkSVM(8, 0.7, k)
        torch.testing.assert_close(criterion(scores, labels), expected)


def test_modules_move_pickle_and_check_their_arguments():
    criterion = compat.SmoothTopkSVM(10, k=2)
    scores, labels = inputs(10)
    assert criterion.to("cpu") is criterion
    torch.testing.assert_close(
        pickle.loads(pickle.dumps(criterion))(scores, labels), criterion(scores, labels)
    )
    with pytest.raises(ValueError, match="n_classes=10"):
        criterion(scores[:, :9], labels.clamp(max=8))
    with pytest.raises(ValueError, match="k must lie in"):
        compat.SmoothTopkSVM(5, k=5)
    with pytest.raises(ValueError, match="n_classes must be"):
        compat.SmoothTop1SVM(1)
