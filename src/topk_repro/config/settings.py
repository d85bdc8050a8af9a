"""The config as the run uses it: every value typed by its schema, ranges checked, before any work.

Types are declared as dataclasses (OmegaConf structured configs): the engine's own groups here,
each data set, model, loss and optimizer beside its builder (its registry entry carries the
schema, looked up by the group's `name`, and the range check; config/components.py).
`typed_config` merges each group into its schema and keeps the result, so every spelling the
schema accepts means one value: `no`, `off`, `false` and `0` are the boolean false, a quoted
`'2'` is the integer 2. The engine, the run identity and `config.yaml` all read that typed
config, never the raw strings. A wrong type, a missing or an unknown key fails naming the key;
what types cannot say (ranges, choices) is checked after them, in `check_config`: the engine's
groups here, then each component's own check, in one loop.
"""

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from omegaconf.nodes import BooleanNode

from topk_repro.config.components import at_least
from topk_repro.data import BUILDERS
from topk_repro.losses import LOSSES
from topk_repro.models import MODELS
from topk_repro.optimizers import OPTIMIZERS


@dataclass
class TrainerSettings:
    epochs: int
    batch_size: int
    eval_batch_size: int
    device: str
    amp: bool
    compile: bool
    deterministic: bool
    channels_last: bool
    force: bool
    progress: Any  # auto | a boolean (typed by _typed_progress)
    cpu_threads: Any = (
        "auto"  # auto | a positive count (typed by _typed_threads; engine/threads.py)
    )


LOGGER_MODES = ("online", "offline", "disabled")  # W&B's modes


@dataclass
class LoggerSettings:
    """`logger=none` and `logger=wandb` (the keys `none` does not set take these defaults)."""

    name: str
    mode: str = "disabled"
    project: str = "smooth-topk"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)
    quiet: bool = True  # W&B's own console output off


@dataclass
class RunSettings:
    seed: int


@dataclass
class DiagnosticsSettings:
    """Measurements beside the training, never part of it (engine/diagnostics.py)."""

    memorisation_images: int = 5000  # training images probed after each epoch; 0: off
    memorisation_seed: int = 0  # which images: the same subset for every run of one data set
    topk_max: int = 10  # the test top-k curve's last k


# The paper's claim families a study can declare (their checks: results/claims.py).
CLAIM_FAMILIES = ("noise", "comparison", "data_size")


@dataclass
class StudySettings:
    """How tables lay out a study's runs and which claims it tests (configs/train.yaml)."""

    row: str = "dataset.noise.p"  # the setting that makes the rows
    row_name: str = "noise p"
    null_row: str = "none"
    claims: list[str] = field(default_factory=list)  # of CLAIM_FAMILIES
    sized_for_claims: bool = False
    optimized_metric: str | None = None  # a search's metric (hparams_search=tau; cli.py checks it)


ENGINE_GROUPS = {"trainer": TrainerSettings, "logger": LoggerSettings}
COMPONENT_GROUPS = {"dataset": BUILDERS, "model": MODELS, "loss": LOSSES, "optim": OPTIMIZERS}


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def typed_group(group: str, schema: type, values: dict) -> dict:
    """`values` as `schema` types them (ValueError naming the key on a wrong type, a missing or
    an unknown key)."""
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), values)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or ""
        detail = _first_line(error)
        if "not in" in detail:
            detail += f" (known keys: {', '.join(f.name for f in fields(schema))})"
        prefix = f"{group}.{key}" if group and key else group or key
        raise ValueError(f"{prefix}: {detail}" if prefix else detail) from None
    missing = sorted(OmegaConf.missing_keys(typed))
    if missing:
        where = f"{group}.{missing[0]}" if group else missing[0]
        raise ValueError(f"{where}: missing, and {schema.__name__} requires it")
    return OmegaConf.to_container(typed)


def _typed_progress(value) -> str | bool:
    if value == "auto":
        return value
    try:
        return BooleanNode(value)._value()
    except OmegaConfBaseException:
        raise ValueError(f"trainer.progress must be auto, true or false, got {value!r}") from None


def _typed_threads(value) -> str | int:
    if value == "auto":
        return value
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"trainer.cpu_threads must be auto or a count >= 1, got {value!r}")
    return count


def _schema(group: str, values: dict) -> type:
    if group in ENGINE_GROUPS:
        return ENGINE_GROUPS[group]
    name = values.get("name") if isinstance(values, dict) else None
    return COMPONENT_GROUPS[group].look_up(name).settings


def typed_values(values: dict) -> dict:
    """A resolved config (a plain dict, Hydra's node left out) with every group typed by its
    schema and the seed an integer."""
    values = dict(values)
    values["seed"] = typed_group("", RunSettings, {"seed": values.get("seed")})["seed"]
    for group in (*ENGINE_GROUPS, *COMPONENT_GROUPS):
        if group not in values:
            raise ValueError(f"the config has no `{group}` group")
        values[group] = typed_group(group, _schema(group, values[group]), values[group])
    values["trainer"]["progress"] = _typed_progress(values["trainer"]["progress"])
    values["trainer"]["cpu_threads"] = _typed_threads(values["trainer"]["cpu_threads"])
    if values["dataset"].get("root"):  # the run folder's config.yaml works from any directory
        values["dataset"]["root"] = str(Path(values["dataset"]["root"]).expanduser().absolute())
    # Optional: run folders recorded before diagnostics existed take the defaults.
    values["diagnostics"] = typed_group(
        "diagnostics", DiagnosticsSettings, values.get("diagnostics") or {}
    )
    values["study"] = typed_group("study", StudySettings, values.get("study") or {})
    return values


def resolved_values(cfg: DictConfig) -> dict:
    """The config as a resolved plain dict, without Hydra's own node (resolving it recurses)."""
    top = [key for key in cfg if key != "hydra"]
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, top), resolve=True)


def typed_config(cfg: DictConfig) -> DictConfig:
    """The run's config, resolved and typed by the schemas (read-only keys stay checked:
    reading a key that does not exist raises)."""
    typed = OmegaConf.create(typed_values(resolved_values(cfg)))
    OmegaConf.set_struct(typed, True)
    return typed


def per_process_batch(batch_size: int, world_size: int) -> int:
    """Each process's share of the global `trainer.batch_size` (ValueError when it does not
    divide: the paper's batch is the global one, whatever the process count)."""
    if batch_size % world_size:
        raise ValueError(
            f"trainer.batch_size={batch_size} is the global batch and must divide among the "
            f"{world_size} processes of this run; choose a multiple of {world_size}"
        )
    return batch_size // world_size


def check_study(cfg: DictConfig) -> None:
    """`study.claims` names known families; `study.row` names a setting of the config."""
    unknown = [name for name in cfg.study.claims if name not in (*CLAIM_FAMILIES, "none")]
    if unknown:
        raise ValueError(
            f"study.claims names unknown claim families {unknown}; known: {list(CLAIM_FAMILIES)}"
        )
    if not _names_a_setting(cfg, cfg.study.row):
        raise ValueError(
            f"study.row must name a setting of the config or of a component's schema (a dotted "
            f"key such as dataset.noise.p), got {cfg.study.row!r}"
        )


def _names_a_setting(cfg: DictConfig, key: str) -> bool:
    """`key` is in the config, or names a field some schema of its group has (a tau study's
    hard-hinge row has no loss.tau: its row is the null row)."""
    if OmegaConf.select(cfg, key, default="<absent>") != "<absent>":
        return True
    group, *path = key.split(".")
    registry = COMPONENT_GROUPS.get(group, {})
    return bool(path) and any(_schema_has(e.settings, path) for e in registry.values())


def _schema_has(schema: type, path: list[str]) -> bool:
    """Whether the dataclass `schema` has the nested field `path` (["noise", "p"])."""
    if not is_dataclass(schema) or path[0] not in {f.name for f in fields(schema)}:
        return False
    return len(path) == 1 or _schema_has(get_type_hints(schema)[path[0]], path[1:])


def check_config(cfg: DictConfig) -> DictConfig:
    """The typed config (`typed_config`), after failing on values that cannot be right, naming
    the key."""
    cfg = typed_config(cfg)
    trainer = cfg.trainer
    at_least("trainer.epochs", trainer.epochs, 0)
    at_least("trainer.batch_size", trainer.batch_size, 1)
    at_least("trainer.eval_batch_size", trainer.eval_batch_size, 1)
    check_study(cfg)
    at_least("diagnostics.memorisation_images", cfg.diagnostics.memorisation_images, 0)
    at_least("diagnostics.topk_max", cfg.diagnostics.topk_max, 5)
    if cfg.logger.mode not in LOGGER_MODES:
        raise ValueError(
            f"logger.mode must be one of {', '.join(LOGGER_MODES)}, got {cfg.logger.mode!r}"
        )
    for group, registry in COMPONENT_GROUPS.items():
        registry.check(cfg[group], cfg.dataset.num_classes)
    return cfg
