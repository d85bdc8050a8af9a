"""A run's identity: the settings that can change its results, and a short digest of them.

The identity is the whole resolved config, typed by its schemas (config/settings.py, so `no` and
`false` are one value), minus the keys that say where things live, how they are shown or how
fast they run, but never what is computed: the engine's, listed in `NOT_IDENTITY`, and each
component's, marked in its schema (`outside_identity()`, components.py).  Numbers are compared as
floats rounded to 12 significant digits (booleans stay booleans), so `dataset.noise.p=0`,
`0.0` and the `0.6000000000000001` of a float range are one run with 0.6.  Run folders are named
`<readable name>-<digest>`, and a folder is reused (resumed, or reported finished) only by a run
of the same identity.
"""

import contextlib
import dataclasses
import hashlib
import json
from functools import cache

from omegaconf import DictConfig

from topk_repro.config.settings import COMPONENT_GROUPS, resolved_values, typed_values

# Keys (and whole sections) outside the components' schemas that cannot change a run's results
# (docs/run-folder.md, "Run identity", shows them).
NOT_IDENTITY = (
    "hydra",  # Hydra's own settings: launcher, output folders
    "paths",  # where data and runs live
    "logger",  # W&B mirroring
    "experiment_name",  # the folder a run is filed under, not what it computes
    "run_name",
    "per_loss",  # presets; the values a run uses are resolved into optim.* and loss.*
    "study",  # how tables lay out a study's runs
    "per_optim",  # presets; the values a run uses are resolved into optim.*
    "resources",  # the size of a cluster job
    "diagnostics",  # measurements taken beside the training (memorisation), never part of it
    "trainer.device",  # recorded in run.json
    "trainer.cpu_threads",  # recorded in run.json per segment; a resume under another says so
    "trainer.eval_batch_size",
    "trainer.progress",
    "trainer.force",
)


# Settings added after runs were recorded, whose null means what their absence meant: left out
# of the identity while null, so the runs recorded before them keep their identity.
LEFT_OUT_WHEN_NULL = ("dataset.noise.file", "dataset.synthetic.pixel_noise")

SIGNIFICANT_DIGITS = 12  # numbers equal to this precision are one setting


def _normalise(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return str(value)


def flatten(value: dict, prefix: str = "") -> dict:
    """A nested config as {dotted key: value} (an empty section contributes no key)."""
    flat = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            flat.update(flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


@cache
def outside_identity_keys() -> frozenset[str]:
    """The dotted keys that some component's schema marks `outside_identity()`."""
    keys = set()
    for group, registry in COMPONENT_GROUPS.items():
        for entry in registry.values():
            for field in dataclasses.fields(entry.settings):
                if field.metadata.get("identity") is False:
                    keys.add(f"{group}.{field.name}")
    return frozenset(keys)


def is_identity_key(key: str) -> bool:
    """Whether a dotted config key belongs to a run's identity."""
    if key in outside_identity_keys():
        return False
    return not any(key == name or key.startswith(f"{name}.") for name in NOT_IDENTITY)


def run_identity(cfg: DictConfig | dict, processes: int = 1) -> dict:
    """The identity of a run: {dotted key: normalised value}, sorted by key.  A run of several
    processes has `processes` too: per-process BatchNorm statistics (and the at most
    processes - 1 samples an epoch drops to share its batches evenly) change the results, so a
    2-process run never resumes, or stands for, a 1-process run of the same config."""
    if isinstance(cfg, DictConfig):
        cfg = resolved_values(cfg)
    # A config its schema refuses keeps its raw values: the run stops on that error before any
    # work, and only the folder name computed at composition sees them.
    with contextlib.suppress(ValueError):
        cfg = typed_values(cfg)
    flat = flatten(_normalise(cfg))
    if processes > 1:
        flat["processes"] = float(processes)
    return {
        key: flat[key]
        for key in sorted(flat)
        if is_identity_key(key) and not (key in LEFT_OUT_WHEN_NULL and flat[key] is None)
    }


def identity_digest(identity: dict) -> str:
    """A short, stable digest of an identity (10 hex digits)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def identity_changes(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every key that differs (missing keys shown as <absent>)."""
    absent = "<absent>"

    def shown(value) -> str:
        integral = isinstance(value, float) and value.is_integer()
        return str(int(value)) if integral else str(value)

    return [
        f"{key}: {shown(old.get(key, absent))} -> {shown(new.get(key, absent))}"
        for key in sorted(set(old) | set(new))
        if old.get(key, absent) != new.get(key, absent)
    ]


def without_seed(identity: dict) -> dict:
    """The identity of a run's configuration across seeds (what a table cell averages over)."""
    return {key: value for key, value in identity.items() if key != "seed"}


class RunFolderConflict(Exception):
    """The run folder holds a run of another identity; nothing was changed in it."""


def check_folder_identity(folder, recorded: dict | None, identity: dict) -> None:
    """Refuse to reuse `folder` (resume it, or report it finished) for a run of another
    identity: raise RunFolderConflict listing the differing keys (old -> new)."""
    if recorded is None:
        return
    old = recorded.get("identity")
    if old is None:
        raise RunFolderConflict(
            f"{folder} holds a run recorded without its identity (an older version of this "
            "framework), so it cannot be told whether it is the same run: move it away, or "
            "choose another paths.run_dir"
        )
    changes = identity_changes(old, identity)
    if changes:
        listed = "\n  ".join(changes)
        raise RunFolderConflict(
            f"{folder} holds a different run; its settings differ from this command's:\n"
            f"  {listed}\nNothing was changed. Keep the recorded settings to resume it, or "
            "choose another paths.run_dir (without paths.run_dir every configuration gets its "
            "own folder)"
        )
