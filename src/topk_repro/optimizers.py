"""Optimizers of the framework; `OPTIMIZERS` is the one place where they are registered, keyed
by `optim.name` (configs/optim/).

Every optimizer shares the step schedule (`lr`, `milestones`, `gamma`: the engine sets each
epoch's learning rate, engine/schedule.py) and `weight_decay`; its own settings extend
`OptimizerSettings`.  An entry's `check` fails on values its schema's types cannot refuse,
naming the key, before any work.
"""

from dataclasses import dataclass, field

import torch

from topk_repro.components import Component, above, at_least, look_up


@dataclass
class OptimizerSettings:
    """The keys every optimizer's config group has."""

    name: str
    lr: float
    weight_decay: float
    milestones: list[int]  # epochs (counted from 1) at whose start the lr is multiplied by gamma
    gamma: float


@dataclass
class SgdSettings(OptimizerSettings):
    """`optim=sgd_step`: the paper's SGD with (Nesterov) momentum."""

    momentum: float = 0.9
    nesterov: bool = True


@dataclass
class AdamWSettings(OptimizerSettings):
    """`optim=adamw`: Adam with decoupled weight decay."""

    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


def _check_common(cfg) -> None:
    above("optim.lr", cfg.lr, 0)
    at_least("optim.weight_decay", cfg.weight_decay, 0)
    above("optim.gamma", cfg.gamma, 0)
    for milestone in cfg.milestones:
        at_least("optim.milestones", milestone, 1)


def _check_sgd(cfg) -> None:
    _check_common(cfg)
    at_least("optim.momentum", cfg.momentum, 0)
    if cfg.nesterov and cfg.momentum == 0:
        raise ValueError("optim.nesterov=true needs optim.momentum > 0")


def _check_adamw(cfg) -> None:
    _check_common(cfg)
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


OPTIMIZERS: dict[str, Component] = {
    "sgd": Component(_build_sgd, SgdSettings, check=_check_sgd),
    "adamw": Component(_build_adamw, AdamWSettings, check=_check_adamw),
}


def check_optimizer(cfg) -> None:
    """Fail on settings of the `optim` group that cannot be right, naming the key."""
    look_up(OPTIMIZERS, "optim", cfg.name).check(cfg)


def build_optimizer(cfg, parameters) -> torch.optim.Optimizer:
    """The optimizer named by `cfg.name` (the `optim` config group) over `parameters`."""
    return look_up(OPTIMIZERS, "optim", cfg.name).build(cfg, parameters)
