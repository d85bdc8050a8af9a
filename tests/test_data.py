"""Data protocols on real-format fixtures: splits, noise rules, ImageNet subsets, loaders."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import (
    cifar_config,
    dataset_config,
    realistic_coarse_map,
    write_imagefolder_fixture,
)
from topk_repro.data import build_data, synthetic
from topk_repro.data.arrays import ArrayDataset, DeviceLoader
from topk_repro.data.augment import random_crop_flip
from topk_repro.data.cifar_format import files_identity, read_meta, read_split
from topk_repro.data.imagenet import index_cache, scan_folder
from topk_repro.data.label_noise import apply_label_noise
from topk_repro.data.splits import balanced_subset, train_val_split


def test_split_sizes_disjoint_deterministic_and_prefix():
    train, val = train_val_split(50_000, 5_000, seed=1234)
    assert len(train) == 45_000 and len(val) == 5_000
    assert not set(train) & set(val)
    again_train, again_val = train_val_split(50_000, 5_000, seed=1234)
    assert (train == again_train).all() and (val == again_val).all()
    small_train, small_val = train_val_split(50_000, 5_000, 1234, train_size=1000, val_size=100)
    assert (small_train == train[:1000]).all() and (small_val == val[:100]).all()
    with pytest.raises(ValueError, match="dataset.train_size must be in"):
        train_val_split(100, 10, 0, train_size=500)


@pytest.mark.parametrize("mode,expected", [("block", 0.8), ("superclass", 0.8), ("uniform", 0.99)])
@pytest.mark.parametrize("p", [0.2, 0.6, 1.0])
def test_noise_changed_fraction(mode, expected, p):
    coarse_of_fine = realistic_coarse_map()
    fine = np.random.default_rng(1).integers(0, 100, 50_000)
    noisy = apply_label_noise(fine, coarse_of_fine[fine], p, mode, seed=3)
    assert abs(np.mean(noisy != fine) - expected * p) < 0.01


def test_block_rule_stays_in_block_and_superclass_rule_in_coarse_class():
    coarse_of_fine = realistic_coarse_map()
    fine = np.random.default_rng(1).integers(0, 100, 20_000)
    block = apply_label_noise(fine, coarse_of_fine[fine], 1.0, "block", seed=0)
    assert (block // 5 == fine // 5).all()
    superclass = apply_label_noise(fine, coarse_of_fine[fine], 1.0, "superclass", seed=0)
    assert (coarse_of_fine[superclass] == coarse_of_fine[fine]).all()
    assert np.mean(superclass // 5 != fine // 5) > 0.5  # not the block rule


def test_noise_depends_only_on_its_seed():
    coarse_of_fine = realistic_coarse_map()
    fine = np.arange(1000) % 100
    first = apply_label_noise(fine, coarse_of_fine[fine], 0.5, "superclass", seed=11)
    torch.manual_seed(123)  # the training seed must not matter
    second = apply_label_noise(fine, coarse_of_fine[fine], 0.5, "superclass", seed=11)
    third = apply_label_noise(fine, coarse_of_fine[fine], 0.5, "superclass", seed=12)
    assert (first == second).all() and (first != third).any()


@pytest.mark.parametrize(
    "p,mode,message",
    [
        (1.5, "block", "dataset.noise.p must be in"),
        (-0.1, "block", "dataset.noise.p must be in"),
        (0.2, "blocks", "dataset.noise.mode must be one of"),
    ],
)
def test_bad_noise_raises(cifar_root, p, mode, message):
    with pytest.raises(ValueError, match=message):
        build_data(cifar_config(cifar_root, **{"noise.p": p, "noise.mode": mode}))


def test_cifar_bundle_follows_protocol(cifar_root):
    bundle = build_data(cifar_config(cifar_root, **{"noise.p": 0.4, "noise.mode": "superclass"}))
    labels = bundle.labels
    assert len(bundle.train) == 1500 and len(bundle.val) == 500 and len(bundle.test) == 500
    assert not set(labels["train_index"]) & set(labels["val_index"])
    clean = read_split(cifar_root, "train").fine
    assert (labels["train_clean"] == clean[labels["train_index"]]).all()
    assert (labels["val_labels"] == clean[labels["val_index"]]).all()  # validation stays clean
    realised = bundle.record["noise"]["realised_fraction"]
    assert realised == pytest.approx(np.mean(labels["train_noisy"] != labels["train_clean"]))
    assert 0.2 < realised < 0.45
    assert bundle.record["official"] is False
    image, label = bundle.train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert int(label) == labels["train_noisy"][0]


def test_noise_on_val_flag(cifar_root):
    bundle = build_data(cifar_config(cifar_root, **{"noise.p": 1.0, "noise.on_val": True}))
    clean = read_split(cifar_root, "train").fine[bundle.labels["val_index"]]
    assert (bundle.labels["val_labels"] != clean).any()


def test_missing_cifar_files_error_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.download=true"):
        build_data(cifar_config(tmp_path / "nowhere"))


def test_official_identity_is_checked_by_checksum(cifar_root, monkeypatch):
    assert files_identity(cifar_root)["official"] is False
    import topk_repro.data.cifar_format as cifar_format

    monkeypatch.setattr(cifar_format, "OFFICIAL_MD5", files_identity(cifar_root)["md5"])
    assert cifar_format.files_identity(cifar_root)["official"] is True


def test_synthetic_set_is_deterministic_cifar_format_and_structured(tmp_path):
    synthetic.generate(tmp_path / "a", 1000, 200, seed=5)
    synthetic.generate(tmp_path / "b", 1000, 200, seed=5)
    first, second = read_split(tmp_path / "a", "train"), read_split(tmp_path / "b", "train")
    assert (first.images == second.images).all() and (first.fine == second.fine).all()
    assert (
        first.images.shape == (1000, 32, 32, 3) and np.bincount(first.fine).tolist() == [10] * 100
    )
    assert len(read_meta(tmp_path / "a")["fine_label_names"]) == 100
    templates, coarse_of_fine = synthetic.class_templates(5)
    blocks_that_are_coarse = [len(set(coarse_of_fine[b : b + 5])) == 1 for b in range(0, 100, 5)]
    assert not any(blocks_that_are_coarse)  # like CIFAR-100: label blocks are not super-classes
    flat = templates.reshape(100, -1)
    distance = np.linalg.norm(flat[:, None] - flat[None], axis=-1)
    same = coarse_of_fine[:, None] == coarse_of_fine[None]
    off_diagonal = ~np.eye(100, dtype=bool)
    assert distance[same & off_diagonal].mean() < 0.8 * distance[~same].mean()


def test_synthetic_bad_size_raises(tmp_path):
    with pytest.raises(ValueError, match="multiple of 100"):
        synthetic.generate(tmp_path, 150, 200, seed=0)


@pytest.mark.parametrize("noise", [float("nan"), float("inf"), -1.0])
def test_synthetic_pixel_noise_must_be_a_finite_level(tmp_path, noise):
    with pytest.raises(ValueError, match="dataset.synthetic.pixel_noise must be a finite number"):
        synthetic.ensure_generated(tmp_path, 200, 100, seed=0, noise=noise)
    assert not any(tmp_path.iterdir())  # nothing generated


def imagenet_cfg(root, **changes):
    """`dataset=imagenet` on a fixture of 3 classes unless `num_classes` says otherwise."""
    values = {"val_per_class": 5, "num_classes": 3, **changes, "root": str(root)}
    return dataset_config("imagenet", **values)


def test_imagenet_subsets_balanced_nested_disjoint(tmp_path):
    write_imagefolder_fixture(tmp_path, classes=3, train_per_class=30, val_per_class=4)
    subsets = {}
    for per_class in (4, 8, None):
        bundle = build_data(imagenet_cfg(tmp_path, train_per_class=per_class))
        train, val = bundle.labels["train_index"], bundle.labels["val_index"]
        counts = np.bincount(bundle.labels["train_clean"])
        assert counts.tolist() == [per_class or 25] * 3
        assert (bundle.train.labels.numpy() == bundle.labels["train_clean"]).all()
        assert not set(train) & set(val) and len(val) == 15
        subsets[per_class] = set(train)
    assert subsets[4] <= subsets[8] <= subsets[None]
    image, _ = bundle.train[0]
    assert image.shape == (3, 224, 224)
    crops, _ = bundle.test[0]
    assert crops.shape == (10, 3, 224, 224) and len(bundle.test) == 12
    with pytest.raises(ValueError, match="fewer than dataset.train_per_class=64"):
        build_data(imagenet_cfg(tmp_path, train_per_class=64))


def test_imagenet_index_cached_outside_the_data_and_stale_cache_detected(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPK_REPRO_CACHE", str(tmp_path / "cache"))
    write_imagefolder_fixture(tmp_path, classes=2, train_per_class=6, val_per_class=2)
    before = sorted((tmp_path / "train").rglob("*"))
    _, paths, _ = scan_folder(tmp_path / "train")
    assert index_cache(tmp_path / "train").is_file() and len(paths) == 12
    assert str(index_cache(tmp_path / "train")).startswith(str(tmp_path / "cache"))
    assert not list(tmp_path.glob(".index*"))  # nothing beside the data (often read-only)
    assert sorted((tmp_path / "train").rglob("*")) == before
    folder = tmp_path / "train" / "n00000000"
    (folder / "img_0000.png").rename(folder / "extra.png")
    stamp = time.time() + 5
    os.utime(folder, (stamp, stamp))
    _, paths, _ = scan_folder(tmp_path / "train")
    assert "n00000000/extra.png" in paths


def test_imagenet_missing_folder_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageFolder layout"):
        build_data(imagenet_cfg(tmp_path / "none"))


def test_balanced_subset_nested_with_exclusion():
    labels = np.repeat(np.arange(4), 50)
    held_out = balanced_subset(labels, 10, seed=1)
    small = balanced_subset(labels, 5, seed=2, exclude=held_out)
    large = balanced_subset(labels, 20, seed=2, exclude=held_out)
    assert set(small) <= set(large) and not set(large) & set(held_out)


def _marker_positions(images: torch.Tensor) -> np.ndarray:
    """Row and column of the single bright pixel in each augmented image."""
    flat = images[:, 0].flatten(1).argmax(1)
    return np.stack([(flat // 32).numpy(), (flat % 32).numpy()], 1)


def test_device_loader_draws_the_standard_augmentation_distribution():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 10, 5] = 255  # a marker pixel: its position reveals the crop offset and flip
    draws = 4000
    dataset = ArrayDataset(np.repeat(image, draws, 0), np.zeros(draws), train=True)
    torch.manual_seed(0)
    standard = torch.stack([dataset[i][0] for i in range(draws)])
    device_batches = DeviceLoader(dataset, batch_size=500, shuffle=True, device="cpu", seed=3)
    on_device = torch.cat([images for images, _ in device_batches])
    for positions in (_marker_positions(standard), _marker_positions(on_device)):
        rows, cols = positions[:, 0], positions[:, 1]
        assert rows.min() >= 6 and rows.max() <= 14  # 10 shifted by -4..4
        assert abs(rows.mean() - 10) < 0.2
        flipped = cols > 15
        assert abs(flipped.mean() - 0.5) < 0.04
        assert abs(cols[~flipped].mean() - 5) < 0.2 and abs(cols[flipped].mean() - 26) < 0.2
    standard_rows = np.bincount(_marker_positions(standard)[:, 0], minlength=32)[6:15] / draws
    device_rows = np.bincount(_marker_positions(on_device)[:, 0], minlength=32)[6:15] / draws
    assert np.abs(standard_rows - 1 / 9).max() < 0.03 and np.abs(device_rows - 1 / 9).max() < 0.03


def test_device_loader_respects_seed_and_epoch():
    images = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    dataset = ArrayDataset(images, np.arange(64), train=True)

    def epoch_batches(seed, epoch):
        loader = DeviceLoader(dataset, batch_size=16, shuffle=True, device="cpu", seed=seed)
        loader.set_epoch(epoch)
        return [(x.clone(), y.clone()) for x, y in loader]

    a, b, c = epoch_batches(1, 1), epoch_batches(1, 1), epoch_batches(1, 2)
    assert all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )
    assert not torch.equal(a[0][1], c[0][1])
    assert sorted(torch.cat([y for _, y in a]).tolist()) == list(range(64))


def test_random_crop_flip_keeps_shape_and_dtype():
    batch = torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8)
    out = random_crop_flip(batch)
    assert out.shape == batch.shape and out.dtype == torch.uint8


def test_device_loader_gives_training_ranks_equal_counts_and_covers_eval():
    images = np.zeros((10, 32, 32, 3), np.uint8)
    train = ArrayDataset(images, np.arange(10), train=True)
    evaluation = ArrayDataset(images, np.arange(10), train=False)
    counts = []
    for rank in range(3):
        loader = DeviceLoader(
            train, batch_size=2, shuffle=True, device="cpu", rank=rank, world_size=3
        )
        batches = list(loader)
        counts.append(sum(len(y) for _, y in batches))
        assert len(batches) == len(loader)
    assert counts == [3, 3, 3]
    seen = []
    for rank in range(3):
        loader = DeviceLoader(evaluation, 4, shuffle=False, device="cpu", rank=rank, world_size=3)
        seen += [int(v) for _, y in loader for v in y]
        assert len(list(loader)) == len(loader)
    assert sorted(seen) == list(range(10))


def test_imagenet_test_transform_pickles_for_spawned_workers(tmp_path):
    import pickle

    write_imagefolder_fixture(tmp_path, classes=2, train_per_class=8, val_per_class=2)
    bundle = build_data(imagenet_cfg(tmp_path, val_per_class=2, num_classes=2))
    restored = pickle.loads(pickle.dumps(bundle.test))
    assert restored[0][0].shape == (10, 3, 224, 224)


def _generate_into(root: str) -> None:
    synthetic.generate(Path(root), 2000, 500, seed=9)


@pytest.mark.slow
def test_parallel_jobs_generating_the_same_set_leave_valid_files(tmp_path):
    context = torch.multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_generate_into, args=(str(tmp_path / "shared"),)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    synthetic.generate(tmp_path / "alone", 2000, 500, seed=9)
    for name in ("train", "test"):
        shared, alone = read_split(tmp_path / "shared", name), read_split(tmp_path / "alone", name)
        assert (shared.images == alone.images).all() and (shared.fine == alone.fine).all()
    assert not [
        p for p in (tmp_path / "shared" / "cifar-100-python").iterdir() if p.name.startswith(".")
    ]  # no temporary file left behind
