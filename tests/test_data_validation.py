"""Data files are validated on load: no code runs from a pickle, damaged or inconsistent files
are errors naming the file, damaged caches are rebuilt."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from helpers import (
    cifar_config,
    compose_config,
    dataset_config,
    folder_contents,
    tiny_overrides,
    write_cifar_fixture,
    write_imagefolder_fixture,
)
from topk_repro.data import build_data, synthetic
from topk_repro.data.cifar_format import FOLDER, read_split
from topk_repro.data.imagenet import index_cache, scan_folder
from topk_repro.engine import fit


def rewrite(root, name: str, change) -> None:
    path = root / FOLDER / name
    with open(path, "rb") as handle:
        entry = pickle.load(handle, encoding="latin1")
    change(entry)
    path.write_bytes(pickle.dumps(entry, protocol=2))


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "cifar"
    write_cifar_fixture(root, num_train=200, num_test=100)
    rewrite(root, "train", lambda entry: entry.update(batch_label=RunsCode()))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"refusing to read .*train: it references posix.system"):
        build_data(cifar_config(root))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("cut", [0, 100, -50])
def test_empty_or_truncated_pickles_name_the_file(tmp_path, cut):
    root = tmp_path / "cifar"
    write_cifar_fixture(root, num_train=200, num_test=100)
    path = root / FOLDER / "test"
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ValueError, match=r"cannot read .*test: empty, truncated"):
        build_data(cifar_config(root))


@pytest.mark.parametrize(
    "name,change,message",
    [
        (
            "test",
            lambda e: e["fine_labels"].__setitem__(3, -100),
            r"fine_labels must lie in \[0, 99\]",
        ),
        (
            "train",
            lambda e: e["coarse_labels"].__setitem__(0, 20),
            r"coarse_labels must lie in \[0, 19\]",
        ),
        ("train", lambda e: e["fine_labels"].pop(), r"fine_labels must hold one integer per image"),
        ("train", lambda e: e.pop("coarse_labels"), "lacks coarse_labels"),
        ("test", lambda e: e.update(data=e["data"][:, :1000]), "rows of 3072 bytes"),
        ("test", lambda e: e.update(data=e["data"].astype(np.float32)), "must be uint8"),
    ],
)
def test_inconsistent_cifar_files_are_errors_naming_the_file(tmp_path, name, change, message):
    root = tmp_path / "cifar"
    write_cifar_fixture(root, num_train=200, num_test=100)
    rewrite(root, name, change)
    with pytest.raises(ValueError, match=message) as raised:
        build_data(cifar_config(root))
    assert str(root / FOLDER / name) in str(raised.value)


def test_num_classes_must_match_the_data(tmp_path):
    root = tmp_path / "cifar"
    write_cifar_fixture(root, num_train=200, num_test=100)
    with pytest.raises(ValueError, match="dataset.num_classes=10 but .*meta names 100"):
        build_data(cifar_config(root, num_classes=10))


def test_official_files_read_back_as_written(tmp_path):
    root = tmp_path / "cifar"
    write_cifar_fixture(root, num_train=200, num_test=100)
    split = read_split(root, "train")
    assert split.images.shape == (200, 32, 32, 3) and split.images.dtype == np.uint8
    assert split.fine.dtype == np.int64 and split.fine.max() < 100


def test_a_damaged_or_empty_marker_is_no_licence_to_write_over_a_folder(cifar_root):
    folder = cifar_root / FOLDER
    for marker in ('{"seed": 0, "num_', "{}", ""):
        (folder / synthetic.MARKER).write_text(marker)
        before = folder_contents(folder)
        with pytest.raises(synthetic.NotGeneratedHere, match="no valid SYNTHETIC.json"):
            synthetic.ensure_generated(cifar_root, 200, 100, seed=0)
        assert folder_contents(folder) == before


def test_a_marker_copied_into_a_users_folder_does_not_make_its_files_the_set(tmp_path, cifar_root):
    synthetic.ensure_generated(tmp_path, 200, 100, seed=0)
    wanted = (tmp_path / FOLDER / synthetic.MARKER).read_text()
    older = json.dumps({"seed": 0, "num_train": 200, "num_test": 100, "noise": 70.0, "version": 2})
    folder = cifar_root / FOLDER
    for marker in (wanted, older):  # this generator's marker, and the format before digests
        (folder / synthetic.MARKER).write_text(marker)
        before = folder_contents(folder)
        with pytest.raises(synthetic.NotGeneratedHere):
            synthetic.ensure_generated(cifar_root, 200, 100, seed=0)
        assert folder_contents(folder) == before


def test_a_generated_file_replaced_later_is_named_and_kept(tmp_path):
    synthetic.ensure_generated(tmp_path, 200, 100, seed=0)
    train = tmp_path / FOLDER / "train"
    train.write_bytes(b"someone else's bytes")
    with pytest.raises(synthetic.NotGeneratedHere, match=f"{train} is not the file"):
        synthetic.ensure_generated(tmp_path, 200, 100, seed=0)
    assert train.read_bytes() == b"someone else's bytes"


def test_a_generation_cut_short_is_started_again(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process died after the train split

    monkeypatch.setattr(synthetic, "write_meta", killed)
    with pytest.raises(KeyboardInterrupt):
        synthetic.ensure_generated(tmp_path, 200, 100, seed=0)
    assert synthetic.IN_PROGRESS in {p.name for p in (tmp_path / FOLDER).iterdir()}
    monkeypatch.undo()
    synthetic.ensure_generated(tmp_path, 200, 100, seed=0)
    assert read_split(tmp_path, "train").images.shape[0] == 200
    assert synthetic.IN_PROGRESS not in {p.name for p in (tmp_path / FOLDER).iterdir()}


def test_a_set_generated_before_digests_is_kept_and_its_marker_upgraded(tmp_path):
    synthetic.ensure_generated(tmp_path, 200, 100, seed=0)
    folder = tmp_path / FOLDER
    parameters = json.loads((folder / synthetic.MARKER).read_text())["parameters"]
    (folder / synthetic.MARKER).write_text(json.dumps(parameters))  # the older format
    written = (folder / "train").stat().st_mtime_ns
    assert synthetic.ensure_generated(tmp_path, 200, 100, seed=0) == parameters
    assert (folder / "train").stat().st_mtime_ns == written  # not generated again
    assert "files" in json.loads((folder / synthetic.MARKER).read_text())


def test_an_imagenet_class_count_unlike_its_folders_is_refused_by_name(tmp_path):
    write_imagefolder_fixture(tmp_path, classes=3, train_per_class=3, val_per_class=1)
    cfg = dataset_config("imagenet", root=str(tmp_path), num_classes=1000, val_per_class=1)
    message = rf"dataset.num_classes=1000, but {tmp_path / 'train'} holds 3 class folders"
    with pytest.raises(ValueError, match=message):
        build_data(cfg)


@pytest.mark.parametrize(
    ("key", "value"), [("train_per_class", 0), ("test_crops", 5), ("loader", "bogus")]
)
def test_building_a_data_set_directly_runs_its_checks(tmp_path, key, value):
    """A builder runs on checked values whoever calls it (a notebook, a test): a training
    subset of 0 images per class would otherwise be silently empty."""
    write_imagefolder_fixture(tmp_path, classes=2, train_per_class=3, val_per_class=1)
    cfg = dataset_config("imagenet", root=str(tmp_path), num_classes=2, val_per_class=1)
    cfg[key] = value
    with pytest.raises(ValueError, match=f"dataset.{key} must be"):
        build_data(cfg)


def test_damaged_imagenet_index_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPK_REPRO_CACHE", str(tmp_path / "cache"))
    write_imagefolder_fixture(tmp_path, classes=2, train_per_class=3, val_per_class=1)
    scan_folder(tmp_path / "train")
    index_cache(tmp_path / "train").write_text('{"stamp": [["n0')
    _, paths, labels = scan_folder(tmp_path / "train")
    assert len(paths) == 6 and sorted(set(labels.tolist())) == [0, 1]


def test_truncated_image_is_an_error_naming_it(tmp_path):
    write_imagefolder_fixture(tmp_path, classes=2, train_per_class=20, val_per_class=1)
    cfg = dataset_config(
        "imagenet",
        root=str(tmp_path),
        num_classes=2,
        val_per_class=2,
        image_size=8,
        resize=10,
        test_crops=1,
    )
    bundle = build_data(cfg)
    broken = bundle.test.folder / bundle.test.paths[0]
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(ValueError, match=f"cannot read image {broken}"):
        bundle.test[0]
    assert isinstance(bundle.test[1][0], torch.Tensor)


def test_too_few_validation_images_name_val_per_class(tmp_path):
    write_imagefolder_fixture(tmp_path, classes=2, train_per_class=3, val_per_class=1)
    cfg = dataset_config(
        "imagenet", root=str(tmp_path), num_classes=2, val_per_class=5, test_crops=1
    )
    with pytest.raises(ValueError, match=r"fewer than dataset.val_per_class=5"):
        build_data(cfg)


def test_the_synthetic_set_is_never_written_over_a_users_cifar_folder(cifar_root, tmp_path):
    before = folder_contents(cifar_root / FOLDER)
    cfg = compose_config(tiny_overrides(tmp_path, "trainer.epochs=0", f"dataset.root={cifar_root}"))
    with pytest.raises(synthetic.NotGeneratedHere, match=rf"{cifar_root / FOLDER} holds .*meta"):
        fit.run(cfg, tmp_path / "run")
    assert folder_contents(cifar_root / FOLDER) == before


def test_the_synthetic_set_is_regenerated_over_its_own_files_only(tmp_path):
    synthetic.ensure_generated(tmp_path, 200, 100, seed=0)
    synthetic.ensure_generated(tmp_path, 300, 100, seed=0)  # other parameters: regenerated
    assert read_split(tmp_path, "train").images.shape[0] == 300
    (tmp_path / "empty" / FOLDER).mkdir(parents=True)  # an empty folder is filled
    synthetic.ensure_generated(tmp_path / "empty", 200, 100, seed=0)
    assert read_split(tmp_path / "empty", "train").images.shape[0] == 200
