"""Recipes with controlled data: validated before any data is touched, rendered through
the normal run path, and the measurement protocols of the image modality."""

from __future__ import annotations

import pytest

from invlab.errors import ConfigError
from invlab.runs.config import load_recipe
from invlab.runs.image import load_data, measurement_data


def test_shipped_controlled_recipes_validate():
    for name in ("supervised-controlled", "simclr-controlled"):
        cfg = load_recipe(name)
        assert cfg.data.name == "controlled" and cfg.data.controlled.transforms
    assert load_recipe("supervised-controlled").augment.views == 1


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["data.controlled.transforms=[rotat]"], "unknown transform 'rotat'"),
        (["data.controlled.num_classes=60"], "cannot take num_classes=60"),
        (["data.controlled.train_samples=0"], "data.controlled.train_samples"),
        (["data.root=/somewhere"], "rendered, not read"),
        (["data.image_size=64"], "differs from 'data.controlled.image_size'"),
        (["data.controlled.transform=[hue]"], "unknown recipe key 'data.controlled.transform'"),
        (["augment.views=2"], "supervised uses exactly 1 views"),
        (["params.label_smoothing=1.5"], "label_smoothing"),
        (["model.projector={hidden: [8], out: 4}"], "supervised has no projector"),
    ],
)
def test_bad_controlled_recipes_name_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_recipe("supervised-controlled", overrides)


def test_controlled_recipe_renders_train_and_test_splits():
    cfg = load_recipe("supervised-controlled", [
        "data.controlled.train_samples=40", "data.controlled.test_samples=20", "data.controlled.num_classes=4",
        "data.controlled.num_backgrounds=8", "data.batch_size=8",
    ])
    train, test = load_data(cfg, progress=False)
    assert train.images.shape == (40, 3, 32, 32) and test.images.shape == (20, 3, 32, 32)
    assert train.classes == test.classes and len(train.classes) == 4
    assert not (train.images[:20] == test.images).all()  # independent content per split
    data = measurement_data(cfg, "test")
    assert data.transform_names == ["rotate", "hue", "blur"] and len(data) == 20


def test_the_wrapper_applies_to_a_real_data_set():
    cfg = load_recipe("simsiam-digits", ["data.controlled={transforms: [rotate], num_classes: 5}"])
    train, test = load_data(cfg, progress=False)
    assert set(train.labels.tolist()) == set(range(5)) and len(train.classes) == 5
    assert train.images.shape[1:] == (1, 8, 8)


ESSL_CONTROLLED = {"e-simclr-controlled": ("e_simclr", 0.4), "e-simsiam-controlled": ("e_simsiam", 0.4),
                   "e-barlow-controlled": ("e_barlow_twins", 8.0)}


@pytest.mark.parametrize("recipe", sorted(ESSL_CONTROLLED))
def test_controlled_essl_recipes_validate(recipe):
    method, weight = ESSL_CONTROLLED[recipe]
    cfg = load_recipe(recipe)
    assert cfg.method == method and cfg.data.name == "controlled"
    # upright objects: none of the E-SSL study's transformations is a factor of the data
    assert cfg.data.controlled.transforms == ["scale", "translate"]
    eq = cfg.params.equivariance
    assert eq.weight == weight and eq.target == [{"name": "rot90"}] and eq.copies == 4
    # the rotation view is the E-SSL CIFAR one scaled to the set: half the image size, base colour augmentations
    assert eq.view[0]["name"] == "crop" and eq.view[0]["size"] * 2 == cfg.data.controlled.image_size
    assert eq.view[1:] == cfg.augment.pipeline[1:]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(ESSL_CONTROLLED))
def test_controlled_essl_recipes_train_end_to_end(recipe, tmp_path):
    from invlab.runs.pretrain_run import pretrain

    cfg = load_recipe(recipe, [
        "data.controlled.train_samples=32", "data.controlled.test_samples=16", "data.controlled.num_classes=4",
        "data.controlled.num_backgrounds=8", "data.batch_size=16", "model.width=4", "model.projector.hidden=[16]",
        "model.projector.out=16", "params.equivariance.hidden=[16, 16]", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "monitor.knn=false", "monitor.probe=false",
    ] + (["model.predictor.hidden=[8]", "model.predictor.out=16"] if "simsiam" in recipe else []))
    summary = pretrain(cfg, tmp_path / "run", progress=False)
    assert summary["method"] == ESSL_CONTROLLED[recipe][0] and summary["global_step"] == 2
    assert 0.0 <= summary["metrics"]["train/equivariance/rot90.k/acc"] <= 1.0
    assert (tmp_path / "run" / "encoder.safetensors").is_file()
