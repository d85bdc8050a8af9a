"""Optimizers of the framework; `OPTIMIZERS` is the one place where they are registered, keyed
by `optim.name` (configs/optim/).

Every optimizer shares the step schedule (`lr`, `milestones`, `gamma`: the engine sets each
epoch's learning rate from `learning_rate`) and `weight_decay`; its own settings extend
`OptimizerSettings` (config/components.py).  An entry's `check` fails on values its schema's
types cannot refuse, naming the key, before any work.
"""

from dataclasses import dataclass, field

import torch

from topk_repro.config.components import (
    Component,
    OptimizerSettings,
    Registry,
    above,
    at_least,
    check_optimizer_base,
)


@dataclass
class SgdSettings(OptimizerSettings):
    """`optim=sgd`: the paper's SGD with (Nesterov) momentum."""

    momentum: float = 0.9
    nesterov: bool = True


@dataclass
class AdamWSettings(OptimizerSettings):
    """`optim=adamw`: Adam with decoupled weight decay."""

    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


def _check_sgd(cfg, num_classes: int) -> None:
    at_least("optim.momentum", cfg.momentum, 0)
    if cfg.nesterov and cfg.momentum == 0:
        raise ValueError("optim.nesterov=true needs optim.momentum > 0")


def _check_adamw(cfg, num_classes: int) -> None:
    if len(cfg.betas) != 2 or not all(0 <= b < 1 for b in cfg.betas):
        raise ValueError(f"optim.betas must be two numbers in [0, 1), got {list(cfg.betas)}")
    above("optim.eps", cfg.eps, 0)


def _build_sgd(cfg, parameters) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        parameters,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )


def _build_adamw(cfg, parameters) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        parameters, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
    )


OPTIMIZERS = Registry(
    "optim",
    OptimizerSettings,
    {
        "sgd": Component(_build_sgd, SgdSettings, _check_sgd),
        "adamw": Component(_build_adamw, AdamWSettings, _check_adamw),
    },
    check_base=check_optimizer_base,
)


def build_optimizer(cfg, parameters) -> torch.optim.Optimizer:
    """The optimizer named by `cfg.name` (the `optim` config group) over `parameters`."""
    return OPTIMIZERS.look_up(cfg.name).build(cfg, parameters)


def learning_rate(epoch: int, cfg) -> float:
    """The learning rate of `epoch` (counted from 1) under the `optim` group's step schedule:
    `lr`, multiplied by `gamma` at the start of each of the `milestones` epochs.  A pure
    function of the epoch, so a resumed run needs nothing more from its checkpoint."""
    return cfg.lr * cfg.gamma ** sum(epoch >= milestone for milestone in cfg.milestones)
