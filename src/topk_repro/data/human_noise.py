"""Real human label noise: CIFAR-100N (Wei et al., ICLR 2022), `dataset.noise.mode=human`.

CIFAR-100N is one file, `CIFAR-100_human.pt`, written by `torch.save`: a dict whose
`noisy_label` holds the annotators' fine labels of the 50,000 official training images, in the
order of CIFAR-100's `train` file, and whose `clean_label` holds the official labels.  The file
cannot be downloaded by this project; the user passes its path.  It is read without running
code (weights-only), and refused unless it fits the data on disk: same length, classes in
range, and `clean_label` equal to the official labels (the proof that the two belong together).
"""

from pathlib import Path

import numpy as np
import torch

from topk_repro.data.cifar_format import file_md5


def _numpy_array_globals() -> list:
    """What unpickling a numpy array needs, allowed in weights-only loading: the file stores its
    labels as numpy arrays; these rebuild arrays and dtypes and run nothing else."""
    multiarray = getattr(np, "_core", None) or np.core  # numpy 2 | numpy 1
    dtypes = [type(np.dtype(kind)) for kind in np.sctypeDict.values() if kind is not object]
    return [multiarray.multiarray._reconstruct, np.ndarray, np.dtype, *set(dtypes)]


def _labels(content: dict, key: str, path: Path) -> np.ndarray:
    if key not in content:
        raise ValueError(
            f"{path}: no `{key}` in the file (keys: {', '.join(map(str, content))}); "
            "is it CIFAR-100N's CIFAR-100_human.pt?"
        )
    values = np.asarray(content[key])
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{path}: `{key}` must be a 1-D array of integer labels")
    return values.astype(np.int64)


def read_human_labels(path: str | Path, official_fine: np.ndarray, num_classes: int) -> dict:
    """The human noisy labels of the official training images, checked against them, with
    what run.json records: {"labels", "md5", "file", "realised_fraction"}."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"dataset.noise.file={path} is a folder: give the path of CIFAR-100_human.pt in it"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"dataset.noise.file={path} does not exist: download CIFAR-100_human.pt from "
            "CIFAR-100N's page and give its path"
        )
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle and zip errors of every kind: the file is not readable
        raise ValueError(f"{path}: not a torch.save file readable weights-only ({error})") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path}: holds a {type(content).__name__}, not CIFAR-100N's dict")
    noisy = _labels(content, "noisy_label", path)
    clean = _labels(content, "clean_label", path)
    for key, values in (("noisy_label", noisy), ("clean_label", clean)):
        if len(values) != len(official_fine):
            raise ValueError(
                f"{path}: `{key}` has {len(values)} labels, the training file has "
                f"{len(official_fine)} images"
            )
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(
                f"{path}: `{key}` holds labels outside 0..{num_classes - 1} "
                f"(from {values.min()} to {values.max()})"
            )
    mismatched = int(np.sum(clean != official_fine))
    if mismatched:
        raise ValueError(
            f"{path}: `clean_label` differs from the training file's labels at {mismatched} "
            "images; the file does not belong to the data set on disk"
        )
    return {
        "labels": noisy,
        "md5": file_md5(path),
        "file": str(path),
        "realised_fraction": float(np.mean(noisy != official_fine)),
    }
