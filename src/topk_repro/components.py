"""What a registry holds for each data set, model, loss and optimizer: its builder, the schema
of its config group, its range checks, and (losses) how tables name it.

Each component declares these beside its builder, in its own module, so a new component is one
module, one YAML file and one registry line: the config check looks the schema up by the
group's `name` (engine/settings.py) and the tables ask the entry for the column label.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Component:
    """A registry entry.  `settings` is a dataclass whose fields are exactly the keys of the
    component's config group, with their types (an OmegaConf structured-config schema);
    `label(values)` gives a loss's table label from its settings (`values` maps each setting
    shown to its value; a setting that is the table's row, such as tau in a tau study, is left
    out); `check(settings)` fails on values the types cannot refuse, naming the key."""

    build: Callable
    settings: type
    label: Callable[[Mapping], str] | None = None
    check: Callable | None = None


def look_up(registry: Mapping[str, Component], group: str, name) -> Component:
    """The entry named `name`, or ValueError naming the key and the choices."""
    if name not in registry:
        raise ValueError(f"{group}.name must be one of {', '.join(registry)}, got {name!r}")
    return registry[name]


def at_least(key: str, value, lowest) -> None:
    """A range check every component's `check` and the engine's config check share: ValueError
    naming the key when `value` < `lowest` or is not a finite number."""
    if not (math.isfinite(value) and value >= lowest):
        raise ValueError(f"{key} must be a finite number >= {lowest}, got {value}")


def above(key: str, value, lowest) -> None:
    """ValueError naming the key unless `value` is a finite number > `lowest`."""
    if not (math.isfinite(value) and value > lowest):
        raise ValueError(f"{key} must be a finite number > {lowest}, got {value}")


def outside_identity():
    """A schema field whose value cannot change a run's results (where data lives, a worker
    count, a display tag): left out of the run identity (engine/identity.py reads this)."""
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
class LossSettings:
    """The keys every loss's config group has."""

    name: str
    tag: str = outside_identity()
