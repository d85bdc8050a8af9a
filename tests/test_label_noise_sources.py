"""Label noise beyond the paper's rules: CIFAR-100N's human labels read from its file format,
and pairflip noise."""

import numpy as np
import pytest
import torch

from helpers import cifar_config, human_labels, write_cifar100n
from topk_repro.data import build_data
from topk_repro.data.cifar_format import file_md5, read_split
from topk_repro.data.label_noise import apply_label_noise, check_noise


def test_cifar100n_labels_flow_to_the_run_with_their_rate_and_md5(cifar_root, tmp_path):
    clean = read_split(cifar_root, "train").fine
    noisy = human_labels(clean, 0.4)
    path = tmp_path / "CIFAR-100_human.pt"
    write_cifar100n(path, clean, noisy, coarse_label=clean // 5)
    bundle = build_data(
        cifar_config(cifar_root, **{"noise.mode": "human", "noise.file": str(path)})
    )
    index = bundle.labels["train_index"]
    assert (bundle.labels["train_noisy"] == noisy[index]).all()
    assert (bundle.labels["train_clean"] == clean[index]).all()
    noise = bundle.record["noise"]
    assert noise["mode"] == "human" and noise["human_md5"] == file_md5(path)
    assert noise["realised_fraction"] == pytest.approx(np.mean(noisy[index] != clean[index]))
    assert noise["human_realised_fraction_all"] == pytest.approx(np.mean(noisy != clean))
    assert abs(noise["human_realised_fraction_all"] - 0.4) < 0.05
    assert bundle.groups[0] == "superclass"


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda c, n: (c[:-1], n[:-1]), "has 1999 labels, the training file has 2000"),
        (lambda c, n: (c, np.where(n == n[0], 100, n)), r"labels outside 0..99"),
        (lambda c, n: (np.roll(c, 1), n), "does not belong to the data set on disk"),
        (lambda c, n: (c, n.astype(np.float32)), "1-D array of integer labels"),
    ],
)
def test_a_cifar100n_file_that_does_not_fit_is_refused_naming_the_problem(
    cifar_root, tmp_path, change, message
):
    clean = read_split(cifar_root, "train").fine
    path = tmp_path / "CIFAR-100_human.pt"
    write_cifar100n(path, *change(clean, human_labels(clean, 0.4)))
    with pytest.raises(ValueError, match=message):
        build_data(cifar_config(cifar_root, **{"noise.mode": "human", "noise.file": str(path)}))


def test_cifar100n_file_missing_a_key_or_not_a_dict_or_absent(cifar_root, tmp_path):
    clean = read_split(cifar_root, "train").fine
    path = tmp_path / "labels.pt"
    torch.save({"clean_label": clean}, path)
    with pytest.raises(ValueError, match="no `noisy_label` in the file"):
        build_data(cifar_config(cifar_root, **{"noise.mode": "human", "noise.file": str(path)}))
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="not CIFAR-100N's dict"):
        build_data(cifar_config(cifar_root, **{"noise.mode": "human", "noise.file": str(path)}))
    missing = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match="absent.pt does not exist"):
        build_data(cifar_config(cifar_root, **{"noise.mode": "human", "noise.file": str(missing)}))
    with pytest.raises(IsADirectoryError, match=f"noise.file={tmp_path} is a folder"):
        build_data(cifar_config(cifar_root, **{"noise.mode": "human", "noise.file": str(tmp_path)}))


def test_human_mode_needs_a_file_and_other_modes_refuse_one():
    with pytest.raises(ValueError, match="mode=human needs dataset.noise.file"):
        check_noise(0.0, "human")
    with pytest.raises(ValueError, match="p=0.4 is not used by mode=human"):
        check_noise(0.4, "human", "labels.pt")
    with pytest.raises(ValueError, match="read by mode=human only"):
        check_noise(0.2, "block", "labels.pt")


def test_pairflip_moves_a_share_p_of_labels_to_the_next_class():
    fine = np.random.default_rng(1).integers(0, 100, 50_000)
    noisy = apply_label_noise(fine, fine // 5, 0.3, "pairflip", seed=2)
    changed = noisy != fine
    assert abs(changed.mean() - 0.3) < 0.01
    assert (noisy[changed] == (fine[changed] + 1) % 100).all()
