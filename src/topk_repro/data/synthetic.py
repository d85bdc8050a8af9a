"""A synthetic data set written in the exact CIFAR-100 python format (`dataset=synthetic`).

100 fine classes in 20 coarse classes of 5.  Every image is a smooth template plus noise,
shifted by a random translation: a coarse class owns a strong colour and stripe pattern and its
five fine classes add weaker variations of their own, so fine classes of one coarse class look
more alike than classes of different coarse classes (super-class noise then means what it means
on CIFAR-100).  Fine labels are assigned to coarse classes by a seeded permutation, as CIFAR-100's
alphabetical numbering does, so blocks of 5 consecutive labels are not super-classes.

It is generated deterministically from a seed on first use and is always recorded as synthetic.
"""

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np

from topk_repro.config.components import at_least
from topk_repro.data.cifar_format import FOLDER, CifarSplit, write_meta, write_split
from topk_repro.files import write_atomically

NUM_FINE, NUM_COARSE = 100, 20
FINE_NAMES = [f"synthetic_fine_{i:02d}" for i in range(NUM_FINE)]
MARKER = "SYNTHETIC.json"  # written last: the parameters and the digest of each file
IN_PROGRESS = "GENERATING.json"  # written first, removed last
GENERATOR = "topk_repro.data.synthetic"
WRITTEN = ("train", "test", "meta")
VERSION = 2  # bump when the generator changes, so stale copies on disk are regenerated
# Amplitudes (grey levels) of the class signal and of the default per-pixel noise: a small CNN
# learns the set well above chance in a CPU minute.  More pixel noise
# (dataset.synthetic.pixel_noise) makes a harder set, whose top-5 accuracy stays below saturation
# (docs/cpu-studies.md).
COARSE_COLOUR, COARSE_PATTERN, FINE_PATTERN, FINE_COLOUR, PIXEL_NOISE = 30, 25, 18, 8, 70.0


def _stripes(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` smooth random patterns (count, 32, 32, 3) in [-1, 1]."""
    grid = np.stack(np.meshgrid(np.arange(32), np.arange(32), indexing="ij"), -1) / 32.0
    angle = rng.uniform(0, np.pi, count)
    frequency = rng.uniform(1.0, 3.0, count)
    phase = rng.uniform(0, 2 * np.pi, (count, 3))
    direction = np.stack([np.cos(angle), np.sin(angle)], -1)  # (count, 2)
    wave = 2 * np.pi * frequency[:, None, None] * (grid @ direction.T).transpose(2, 0, 1)
    return np.sin(wave[..., None] + phase[:, None, None, :])


def class_templates(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float templates (100, 32, 32, 3) and the coarse class of each fine class (100,)."""
    rng = np.random.default_rng([seed, 0])
    coarse_of_fine = rng.permutation(np.repeat(np.arange(NUM_COARSE), NUM_FINE // NUM_COARSE))
    coarse_colour = rng.uniform(-COARSE_COLOUR, COARSE_COLOUR, (NUM_COARSE, 3))
    coarse_pattern = COARSE_PATTERN * _stripes(rng, NUM_COARSE)
    fine_pattern = FINE_PATTERN * _stripes(rng, NUM_FINE)
    fine_colour = rng.uniform(-FINE_COLOUR, FINE_COLOUR, (NUM_FINE, 3))
    templates = (
        128.0
        + coarse_colour[coarse_of_fine][:, None, None, :]
        + coarse_pattern[coarse_of_fine]
        + fine_pattern
        + fine_colour[:, None, None, :]
    )
    return templates, coarse_of_fine


def _render(templates, labels, rng, noise: float, chunk: int = 4096) -> np.ndarray:
    images = np.empty((len(labels), 32, 32, 3), np.uint8)
    for start in range(0, len(labels), chunk):
        part = labels[start : start + chunk]
        shift = rng.integers(-4, 5, (len(part), 2))
        rows = (np.arange(32)[None, :] + shift[:, :1]) % 32
        cols = (np.arange(32)[None, :] + shift[:, 1:]) % 32
        picked = templates[part[:, None, None], rows[:, :, None], cols[:, None, :]]
        picked = picked * rng.uniform(0.8, 1.2, (len(part), 1, 1, 1))
        picked += rng.normal(0, noise, picked.shape)
        images[start : start + len(part)] = np.clip(picked, 0, 255).astype(np.uint8)
    return images


def generate(
    root: Path, num_train: int, num_test: int, seed: int, noise: float = PIXEL_NOISE
) -> None:
    """Write train/test/meta under root/cifar-100-python, balanced over the 100 classes."""
    for name, count in (("num_train", num_train), ("num_test", num_test)):
        if count < NUM_FINE or count % NUM_FINE:
            raise ValueError(f"dataset.synthetic.{name} must be a positive multiple of 100")
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    # Written first and removed last: a generation cut short is recognised as this project's.
    write_atomically(folder / IN_PROGRESS, json.dumps({"generator": GENERATOR}).encode())
    (folder / MARKER).unlink(missing_ok=True)
    templates, coarse_of_fine = class_templates(seed)
    for index, (name, count) in enumerate((("train", num_train), ("test", num_test)), start=1):
        rng = np.random.default_rng([seed, index])
        fine = rng.permutation(np.tile(np.arange(NUM_FINE), count // NUM_FINE))
        images = _render(templates, fine, rng, noise)
        write_split(root, name, CifarSplit(images, fine, coarse_of_fine[fine]))
    write_meta(root, FINE_NAMES, [f"synthetic_coarse_{i:02d}" for i in range(NUM_COARSE)])
    parameters = {
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "noise": noise,
        "version": VERSION,
    }
    _with_digests(folder, parameters)
    (folder / IN_PROGRESS).unlink(missing_ok=True)


class NotGeneratedHere(ValueError):
    """The folder the synthetic set would be written to holds files this generator did not
    write (a user's CIFAR-100, say): they are never overwritten, nor read as the set."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _present(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def _verified_parameters(folder: Path) -> dict | None:
    """The parameters of the set this generator finished writing in `folder`, checked file by
    file against the digests its marker records; None when there is no such marker."""
    try:
        record = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and "generator" not in record and _is_ours_before_digests(folder):
        record = _with_digests(folder, record)
    if not (isinstance(record, dict) and record.get("generator") == GENERATOR):
        return None
    files = record.get("files")
    if not isinstance(files, dict) or _present(folder) - {MARKER, IN_PROGRESS} != set(files):
        return None
    for name, digest in files.items():
        if _sha256(folder / name) != digest:
            raise NotGeneratedHere(
                f"{folder / name} is not the file this project generated ({MARKER} records "
                "another digest): a damaged or replaced file. Nothing was changed; delete the "
                "folder to have the synthetic set generated again."
            )
    return record.get("parameters")


def _is_ours_before_digests(folder: Path) -> bool:
    """A set written before markers recorded digests: exactly this generator's three files,
    its meta naming the synthetic classes."""
    if _present(folder) - {MARKER} != set(WRITTEN):
        return False
    try:
        names = pickle.loads((folder / "meta").read_bytes())
    except Exception:  # noqa: BLE001 - any unreadable meta is not this generator's
        return False
    return isinstance(names, dict) and names.get("fine_label_names") == FINE_NAMES


def _with_digests(folder: Path, parameters: dict) -> dict:
    """The marker of an older set, rewritten with the digests of its files."""
    record = {
        "generator": GENERATOR,
        "parameters": parameters,
        "files": {name: _sha256(folder / name) for name in WRITTEN},
    }
    write_atomically(folder / MARKER, json.dumps(record).encode())
    return record


def _interrupted(folder: Path) -> bool:
    """Whether `folder` holds a generation this generator started and did not finish: its
    in-progress note, and no file but those the generation writes (and their temporary files)."""
    try:
        note = json.loads((folder / IN_PROGRESS).read_text())
    except (OSError, ValueError):
        return False
    if not (isinstance(note, dict) and note.get("generator") == GENERATOR):
        return False
    leftovers = _present(folder) - {IN_PROGRESS, MARKER, *WRITTEN}
    return all(name.startswith(tuple(f".{w}." for w in WRITTEN)) for name in leftovers)


def _refuse_foreign_files(folder: Path) -> None:
    """Raise NotGeneratedHere when `folder` holds files that are not a set this generator
    wrote, nor an interrupted generation of its own."""
    found = sorted(_present(folder))
    if found and not _interrupted(folder):
        shown = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
        raise NotGeneratedHere(
            f"{folder} holds files this project did not generate ({shown}) and no valid "
            f"{MARKER}: the synthetic set is written only into an empty folder or over a set it "
            "generated itself. Point dataset.root (or paths.data_dir) at another folder, or use "
            "dataset=cifar100 to read these files."
        )


def ensure_generated(
    root: Path, num_train: int, num_test: int, seed: int, noise: float | None = None
) -> dict:
    """Generate the set unless an identical one is already there; return its parameters.
    `noise` (grey levels of per-pixel noise, PIXEL_NOISE when None) sets the difficulty.
    Files in the folder that this generator did not write are never replaced nor read as the
    set (NotGeneratedHere); a generation cut short (a killed process) is started again."""
    noise = PIXEL_NOISE if noise is None else float(noise)
    at_least("dataset.synthetic.pixel_noise", noise, 0)
    folder = Path(root) / FOLDER
    wanted = {
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "noise": noise,
        "version": VERSION,
    }
    found = _verified_parameters(folder)
    if found == wanted:
        return wanted
    if found is None:
        _refuse_foreign_files(folder)
    generate(root, num_train, num_test, seed, noise)
    return wanted
