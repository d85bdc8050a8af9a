"""Read and write the CIFAR-100 python-version files (`cifar-100-python/{train,test,meta}`).

We read the pickles ourselves instead of using torchvision's `CIFAR100`, which refuses files
whose checksums differ from the official ones: the synthetic set and test fixtures use the same
format, and the run record states whether the files read were the official ones.
"""

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a uniquely named temporary file, then rename: parallel jobs generating the
    same files never see (or produce) a half-written one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _text_keys(entry: dict) -> dict:
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _load_pickle(path: Path) -> dict:
    with open(path, "rb") as handle:
        return _text_keys(pickle.load(handle, encoding="latin1"))


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_split(root: Path, name: str) -> CifarSplit:
    entry = _load_pickle(Path(root) / FOLDER / name)
    images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return CifarSplit(
        images=np.ascontiguousarray(images),
        fine=np.asarray(entry["fine_labels"], dtype=np.int64),
        coarse=np.asarray(entry["coarse_labels"], dtype=np.int64),
    )


def read_meta(root: Path) -> dict:
    return _load_pickle(Path(root) / FOLDER / "meta")


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
    atomic_write(folder / name, pickle.dumps(entry, protocol=2))


def write_meta(root: Path, fine_names: list[str], coarse_names: list[str]) -> None:
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    names = {"fine_label_names": fine_names, "coarse_label_names": coarse_names}
    atomic_write(folder / "meta", pickle.dumps(names, protocol=2))


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
