"""Bad settings fail before any work, naming the key."""

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from helpers import compose_config, tiny_overrides
from topk_repro.engine import fit


def test_misspelt_key_fails_naming_it(tmp_path):
    with pytest.raises(ConfigCompositionException, match="nois"):
        compose_config(tiny_overrides(tmp_path, "dataset.nois.p=0.2"))
    with pytest.raises(ConfigCompositionException, match="model"):
        compose_config(tiny_overrides(tmp_path, "model=resnet1000"))


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.noise.p=1.5", "dataset.noise.p must be in"),
        ("dataset.noise.mode=blocky", "dataset.noise.mode must be one of"),
        ("loss.k=100", r"loss.k must be an int in \[1, 99\]"),
        ("loss.tau=0", "loss.tau must be a finite number > 0"),
        ("loss.alpha=-1", "loss.alpha must be a finite number >= 0"),
        ("loss.k=abc", "loss.k: Value 'abc' of type 'str' could not be converted to Integer"),
        ("trainer.epochs=1.5", "trainer.epochs: Value '1.5' .* could not be converted"),
        ("trainer.eval_batch_size=0", "trainer.eval_batch_size must be a finite number >= 1"),
        ("optim.lr=fast", "optim.lr: Value 'fast'"),
        ("optim.milestones=[0]", "optim.milestones must be a finite number >= 1"),
        ("dataset.num_workers=-1", "dataset.num_workers must be a finite number >= 0"),
        ("model.width=2.5", "model.width: Value '2.5'"),
        ("trainer.progress=maybe", "trainer.progress must be auto, true or false"),
        ("seed=1.5", "seed: Value .1.5. of type .float. could not be converted"),
        ("+loss.kk=3", "loss.kk: Key 'kk' not in 'SmoothSettings'"),
        ("logger=wandb logger.mode=foo", "logger.mode must be one of online, offline, disabled"),
        (
            "study.sized_for_claims=maybe",
            "study.sized_for_claims: Value 'maybe' is not a valid bool",
        ),
        (
            "study.row=dataset.noise.pp",
            "study.row must name a setting of the config or of a component",
        ),
        ("study.claims=[nosie]", r"study.claims names unknown claim families \['nosie'\]"),
        ("+study.rows=x", "study.rows: Key 'rows' not in 'StudySettings'"),
    ],
)
def test_wrong_values_fail_before_any_work(tmp_path, override, message):
    cfg = compose_config(tiny_overrides(tmp_path, "loss=smooth_topk_svm", *override.split()))
    with pytest.raises(ValueError, match=message):
        fit.run(cfg, tmp_path / "run")
    assert not (tmp_path / "data").exists()  # nothing was generated or written


def test_bad_key_access_in_struct_config_names_the_key(tmp_path):
    cfg = compose_config(tiny_overrides(tmp_path))
    with pytest.raises((ConfigAttributeError, ConfigKeyError), match="noize"):
        _ = cfg.dataset.noize


def test_study_settings_are_typed_and_the_claim_families_are_the_checks_ones():
    from topk_repro.config.settings import CLAIM_FAMILIES, check_config
    from topk_repro.results.claims import FAMILIES

    assert set(CLAIM_FAMILIES) == set(FAMILIES)
    typed = check_config(compose_config(["experiment=study_cpu", "study.sized_for_claims=yes"]))
    assert typed.study.sized_for_claims is True  # what config.yaml records, and claims read
