"""ImageNet runs end to end on a small image folder: the ten-crop test, and a damaged test
image found before any training."""

import json

import pytest

from helpers import compose_config, write_imagefolder_fixture
from topk_repro.engine import fit


@pytest.mark.parametrize("loss", ["ce", "smooth_topk_svm"])
def test_imagenet_run_with_ten_crop_test(tmp_path, loss):
    write_imagefolder_fixture(tmp_path / "imagenet", classes=3, train_per_class=8, val_per_class=2)
    cfg = compose_config(
        [
            "experiment=imagenet_subsets",
            f"loss={loss}",
            "loss.k=2" if loss != "ce" else "seed=0",
            f"dataset.root={tmp_path / 'imagenet'}",
            "dataset.num_classes=3",
            "dataset.val_per_class=2",
            "dataset.train_per_class=4",
            "dataset.num_workers=0",
            "dataset.image_size=32",
            "dataset.resize=36",
            "trainer.epochs=1",
            "trainer.batch_size=6",
            "trainer.device=cpu",
            "trainer.eval_batch_size=20",
            "trainer.progress=false",
        ]
    )
    final = fit.run(cfg, tmp_path / "run")
    assert final["status"] == "finished"
    assert 0 <= final["test/top1"] <= final["test/top5"] <= 100
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["dataset"]["split"]["train"] == 12 and record["dataset"]["split"]["test"] == 6


def test_a_bad_imagenet_test_image_stops_the_run_before_training(tmp_path):
    write_imagefolder_fixture(tmp_path / "imagenet", classes=3, train_per_class=8, val_per_class=2)
    broken = sorted((tmp_path / "imagenet" / "val").rglob("*.png"))[1]
    broken.write_bytes(broken.read_bytes()[:40])
    cfg = compose_config(
        [
            "experiment=imagenet_subsets",
            "loss=ce",
            f"dataset.root={tmp_path / 'imagenet'}",
            "dataset.num_classes=3",
            "dataset.val_per_class=2",
            "dataset.train_per_class=4",
            "dataset.num_workers=0",
            "dataset.test_crops=1",
            "trainer.epochs=1",
            "trainer.device=cpu",
            "trainer.progress=false",
        ]
    )
    with pytest.raises(ValueError, match=rf"1 image\(s\) under .* cannot be read: {broken}"):
        fit.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # no epoch was trained
