"""The step learning-rate schedule, as a pure function of the epoch (nothing to checkpoint)."""


def learning_rate(epoch: int, base_lr: float, milestones, gamma: float) -> float:
    """lr of `epoch` (counted from 1): multiplied by gamma at the start of each milestone epoch."""
    return base_lr * gamma ** sum(epoch >= milestone for milestone in milestones)
