"""The contract every data set, model, loss and optimizer meets: a registry entry carrying its
builder, the schema of its config group and its range check, in a registry that refuses a
schema not extending its group's base.

Each component declares these beside its builder, in its own module, so a new component is one
module, one YAML file and one registry line (docs/extending.md): the config check
(config/settings.py) runs every group's `check` in one loop, and the tables ask a loss's entry
for its column label.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


def outside_identity():
    """A schema field whose value cannot change a run's results (where data lives, a worker
    count, a display tag): left out of the run identity (config/identity.py reads this)."""
    return field(metadata={"identity": False})


@dataclass
class DatasetSettings:
    """The keys every data set's config group has: what the engine reads of a data set."""

    name: str
    tag: str = outside_identity()
    root: str = outside_identity()
    num_classes: int
    split_seed: int  # the train/validation split's seed
    loader: str  # standard (DataLoader) | device (the whole split on the device)
    num_workers: int = outside_identity()  # results do not depend on it


@dataclass
class ModelSettings:
    """The keys every model's config group has; its other keys are the builder's options."""

    name: str


@dataclass
class LossSettings:
    """The keys every loss's config group has."""

    name: str
    tag: str = outside_identity()


@dataclass
class OptimizerSettings:
    """The keys every optimizer's config group has: the step schedule every optimizer shares
    (the engine sets each epoch's learning rate from it, optimizers.learning_rate) and the
    weight decay."""

    name: str
    lr: float
    weight_decay: float
    milestones: list[int]  # epochs (counted from 1) at whose start the lr is multiplied by gamma
    gamma: float


@dataclass(frozen=True)
class Component:
    """A registry entry.

    `build`: the builder (its signature is the group's, docs/extending.md).
    `settings`: a dataclass extending the group's base schema whose fields are exactly the keys
    of the component's config group, with their types (an OmegaConf structured-config schema).
    `check(settings, num_classes)`: fails on values the types cannot refuse, naming the key,
    before any work (`num_classes` is the data set's `dataset.num_classes`: a loss's k must
    be below it).
    `label(values)` (losses): its table label from its settings (`values` maps each setting
    shown to its value; a setting that is the table's row, such as tau in a tau study, is left
    out)."""

    build: Callable
    settings: type
    check: Callable[[object, int], None]
    label: Callable[[Mapping], str] | None = None


class Registry(dict):
    """The components of one config group, by their config's `name`.  An entry whose schema
    does not extend the group's base is refused when it is registered (TypeError naming the
    base), so every component of a group has the keys the engine reads of it; `check_base`
    checks those keys for every component, before the component's own check."""

    def __init__(
        self,
        group: str,
        base: type,
        entries: Mapping[str, Component],
        check_base: Callable[[object], None] | None = None,
    ):
        super().__init__()
        self.group, self.base, self.check_base = group, base, check_base
        for name, entry in entries.items():
            self[name] = entry

    def __setitem__(self, name: str, entry: Component) -> None:
        if not (isinstance(entry.settings, type) and issubclass(entry.settings, self.base)):
            raise TypeError(
                f"{self.group} {name!r}: its schema {entry.settings!r} must extend "
                f"{self.base.__name__} (topk_repro.config.components), which declares the keys "
                f"every {self.group} has"
            )
        if entry.check is None:
            raise TypeError(f"{self.group} {name!r}: its entry has no check")
        super().__setitem__(name, entry)

    def look_up(self, name) -> Component:
        """The entry named `name`, or ValueError naming the key and the choices."""
        if name not in self:
            raise ValueError(f"{self.group}.name must be one of {', '.join(self)}, got {name!r}")
        return self[name]

    def check(self, cfg, num_classes: int) -> None:
        """Fail on values of the group's config `cfg` that cannot be right, naming the key: the
        base's keys (`check_base`), then the chosen component's own check."""
        entry = self.look_up(cfg.name)
        if self.check_base is not None:
            self.check_base(cfg)
        entry.check(cfg, num_classes)


def at_least(key: str, value, lowest) -> None:
    """A range check the components' checks and the engine's config check share: ValueError
    naming the key when `value` < `lowest` or is not a finite number."""
    if not (math.isfinite(value) and value >= lowest):
        raise ValueError(f"{key} must be a finite number >= {lowest}, got {value}")


def above(key: str, value, lowest) -> None:
    """ValueError naming the key unless `value` is a finite number > `lowest`."""
    if not (math.isfinite(value) and value > lowest):
        raise ValueError(f"{key} must be a finite number > {lowest}, got {value}")


DATA_LOADERS = ("standard", "device")


def check_dataset_base(cfg) -> None:
    """The checks of the keys every data set has (the data sets' registry runs it)."""
    at_least("dataset.num_classes", cfg.num_classes, 2)
    at_least("dataset.num_workers", cfg.num_workers, 0)
    if cfg.loader not in DATA_LOADERS:
        raise ValueError(f"dataset.loader must be 'standard' or 'device', got {cfg.loader!r}")


def check_optimizer_base(cfg) -> None:
    """The checks of the keys every optimizer has (the optimizers' registry runs it)."""
    above("optim.lr", cfg.lr, 0)
    at_least("optim.weight_decay", cfg.weight_decay, 0)
    above("optim.gamma", cfg.gamma, 0)
    for milestone in cfg.milestones:
        at_least("optim.milestones", milestone, 1)
