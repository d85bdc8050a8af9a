"""The label-noise rules checked on their distributions, not only their averages: where each
redrawn label lands (every position of a group, every class), the direction of pair-flip, and
the realised changed share.  A rule that never draws one position of a group, or that flips the
wrong way, changes Table 1 without changing its average noise rate.

Tolerances are five binomial standard errors of the share being estimated, from the number of
labels it is estimated on (the draws are seeded, so the tests are deterministic)."""

import numpy as np
import pytest

from helpers import realistic_coarse_map
from topk_repro.data.label_noise import apply_label_noise

N = 200_000  # labels drawn per check
C = 100


def within(observed: float, expected: float, count: int) -> bool:
    """`observed` is `expected` up to five standard errors of a share over `count` draws."""
    return abs(observed - expected) <= 5 * np.sqrt(expected * (1 - expected) / count) + 1e-12


def transition_shares(old: np.ndarray, new: np.ndarray, size: int) -> np.ndarray:
    """(size, size) shares P(new position j | old position i) and the counts of each i."""
    table = np.zeros((size, size))
    np.add.at(table, (old, new), 1)
    return table / table.sum(1, keepdims=True), table.sum(1)


def assert_redrawn_within_groups_of_five(old: np.ndarray, new: np.ndarray, p: float) -> None:
    """Positions 0..4 inside a group of 5: with probability p a label is redrawn uniformly
    among the 5 (itself included), so P(j | i) = p / 5 + (1 - p) [i = j]."""
    shares, counts = transition_shares(old, new, 5)
    for i in range(5):
        for j in range(5):
            expected = p / 5 + (1 - p) * (i == j)
            assert within(shares[i, j], expected, counts[i]), (i, j, shares[i, j], expected)


@pytest.fixture(scope="module")
def fine() -> np.ndarray:
    return np.random.default_rng(123).integers(0, C, N)


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_block_rule_redraws_every_position_of_the_block_equally(fine, p):
    noisy = apply_label_noise(fine, realistic_coarse_map()[fine], p, "block", seed=1)
    assert (noisy // 5 == fine // 5).all()  # never leaves its block
    assert_redrawn_within_groups_of_five(fine % 5, noisy % 5, p)
    assert within((noisy != fine).mean(), 0.8 * p, N)


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_superclass_rule_redraws_every_member_of_the_coarse_class_equally(fine, p):
    coarse_of_fine = realistic_coarse_map()
    noisy = apply_label_noise(fine, coarse_of_fine[fine], p, "superclass", seed=2)
    assert (coarse_of_fine[noisy] == coarse_of_fine[fine]).all()
    # a class's position among the 5 members of its coarse class (members sorted by label)
    members = np.stack([np.flatnonzero(coarse_of_fine == c) for c in range(20)])
    position = np.empty(C, dtype=np.int64)
    for row in members:
        position[row] = np.arange(5)
    assert_redrawn_within_groups_of_five(position[fine], position[noisy], p)
    assert within((noisy != fine).mean(), 0.8 * p, N)


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_uniform_rule_lands_on_every_class_equally(fine, p):
    noisy = apply_label_noise(fine, realistic_coarse_map()[fine], p, "uniform", seed=3)
    redrawn_share = np.bincount(noisy[noisy != fine], minlength=C) / N
    # a label lands on class c when redrawn from another class: p (1 - share of c) / C
    share_of = np.bincount(fine, minlength=C) / N
    for c in range(C):
        expected = p * (1 - share_of[c]) / C
        assert within(redrawn_share[c], expected, N), (c, redrawn_share[c], expected)
    assert within((noisy != fine).mean(), (1 - 1 / C) * p, N)


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_pairflip_moves_labels_to_the_next_class_only(fine, p):
    noisy = apply_label_noise(fine, realistic_coarse_map()[fine], p, "pairflip", seed=4)
    changed = noisy != fine
    assert (noisy[changed] == (fine[changed] + 1) % C).all()  # forwards, never backwards
    assert within(changed.mean(), p, N)
    for c in range(C):  # every class flips at rate p
        of_c = fine == c
        assert within(changed[of_c].mean(), p, of_c.sum()), c
