"""Read and write the CIFAR-100 python-version files (`cifar-100-python/{train,test,meta}`).

We read the pickles ourselves instead of using torchvision's `CIFAR100`, which refuses files
whose checksums differ from the official ones: the synthetic set and test fixtures use the same
format, and the run record states whether the files read were the official ones.
"""

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topk_repro.files import write_atomically

FOLDER = "cifar-100-python"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
OFFICIAL_MD5 = {
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "meta": "7973b15100ade9c7d40fb424638fde48",
}


@dataclass
class CifarSplit:
    """One CIFAR file: images (N, 32, 32, 3) uint8 with fine and coarse labels (N,) int64."""

    images: np.ndarray
    fine: np.ndarray
    coarse: np.ndarray


def _text_keys(entry: dict) -> dict:
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


# What the official files (and ours) reference: numpy arrays, and bytes as protocol-2 pickles
# write them.  Nothing here runs code beyond building those values.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _Forbidden(pickle.UnpicklingError):
    """The pickle references something that is not data."""


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, bytes, numbers and numpy arrays, and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _Forbidden(
                f"it references {module}.{name}, which CIFAR-format files never contain"
            )
        return super().find_class(module, name)


def _load_pickle(path: Path) -> dict:
    """A CIFAR-format pickle as a dict with text keys; ValueError naming the file when it is
    missing, empty, truncated, not a dict, or holds anything but data."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        with open(path, "rb") as handle:
            entry = _DataOnlyUnpickler(handle, encoding="latin1").load()
    except _Forbidden as error:
        raise ValueError(f"refusing to read {path}: {error}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
    ) as error:
        raise ValueError(
            f"cannot read {path}: empty, truncated or not a CIFAR-format pickle "
            f"({type(error).__name__}: {error})"
        ) from None
    if not isinstance(entry, dict):
        raise ValueError(f"{path} holds a {type(entry).__name__}, not a CIFAR-format dict")
    return _text_keys(entry)


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _labels(entry: dict, key: str, count: int, classes: int, path: Path) -> np.ndarray:
    labels = np.asarray(entry[key])
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: {key} must hold one integer per image ({count}), got shape {labels.shape} "
            f"of {labels.dtype}"
        )
    if count and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(
            f"{path}: {key} must lie in [0, {classes - 1}], got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int64)


def read_split(root: Path, name: str, num_classes: int = 100) -> CifarSplit:
    """One split, checked: the keys, uint8 images of 3 x 32 x 32, one fine label in
    [0, num_classes) and one coarse label in [0, 20) per image (ValueError naming the file)."""
    path = Path(root) / FOLDER / name
    entry = _load_pickle(path)
    missing = [key for key in ("data", "fine_labels", "coarse_labels") if key not in entry]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: not a CIFAR-100 file")
    data = np.asarray(entry["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{path}: data must be uint8 rows of 3072 bytes (3 x 32 x 32), got shape "
            f"{data.shape} of {data.dtype}"
        )
    count = len(data)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return CifarSplit(
        images=np.ascontiguousarray(images),
        fine=_labels(entry, "fine_labels", count, num_classes, path),
        coarse=_labels(entry, "coarse_labels", count, 20, path),
    )


def read_meta(root: Path) -> dict:
    return _load_pickle(Path(root) / FOLDER / "meta")


def check_class_count(root: Path, num_classes: int) -> None:
    """`dataset.num_classes` must equal the number of fine classes the meta file names."""
    path = Path(root) / FOLDER / "meta"
    names = read_meta(root).get("fine_label_names")
    if not isinstance(names, list):
        raise ValueError(f"{path} lacks fine_label_names: not a CIFAR-100 meta file")
    if len(names) != num_classes:
        raise ValueError(
            f"dataset.num_classes={num_classes} but {path} names {len(names)} fine classes"
        )


def write_split(root: Path, name: str, split: CifarSplit) -> None:
    """Write one split in the official layout (rows of 3072 bytes: R plane, G plane, B plane)."""
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    entry = {
        "filenames": [f"{name}_{i:05d}.png" for i in range(len(split.fine))],
        "batch_label": f"{name} batch",
        "fine_labels": [int(v) for v in split.fine],
        "coarse_labels": [int(v) for v in split.coarse],
        "data": split.images.transpose(0, 3, 1, 2).reshape(len(split.fine), -1),
    }
    write_atomically(folder / name, pickle.dumps(entry, protocol=2))


def write_meta(root: Path, fine_names: list[str], coarse_names: list[str]) -> None:
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    names = {"fine_label_names": fine_names, "coarse_label_names": coarse_names}
    write_atomically(folder / "meta", pickle.dumps(names, protocol=2))


def files_identity(root: Path) -> dict:
    """md5 of each file and whether all three are the official CIFAR-100 files."""
    md5 = {name: file_md5(Path(root) / FOLDER / name) for name in OFFICIAL_MD5}
    return {"md5": md5, "official": md5 == OFFICIAL_MD5}


def ensure_files(root: Path, download: bool) -> None:
    """Make sure the three files exist, downloading and verifying the archive if asked to."""
    root = Path(root)
    missing = [n for n in OFFICIAL_MD5 if not (root / FOLDER / n).is_file()]
    if not missing:
        return
    if not download:
        raise FileNotFoundError(
            f"CIFAR-100 not found: missing {', '.join(missing)} under {root / FOLDER}; run with "
            f"dataset.download=true or point dataset.root at a folder holding {FOLDER}/"
        )
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(ARCHIVE_URL, str(root), md5=ARCHIVE_MD5)
