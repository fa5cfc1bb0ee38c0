"""Recipes are validated before anything runs; errors name the key."""

from __future__ import annotations

import pytest

from invlab.errors import ConfigError
from invlab.runs.config import Config, load_recipe, parse_overrides, recipe_names
from invlab.runs.schema import set_path


def test_every_shipped_recipe_validates():
    names = recipe_names()
    assert {"simclr-cifar10", "simsiam-cifar10", "barlow-cifar10", "simclr-cifar10-budget", "simclr-digits"} <= set(names)
    for name in names:
        cfg = load_recipe(name)
        assert isinstance(cfg, Config) and cfg.description


def test_overrides_are_typed():
    cfg = load_recipe("simclr-digits", ["optim.lr=0.3", "trainer.max_epochs=2", "data.train_subset=500",
                                        "augment.pipeline.0.scale=[0.2, 1.0]", "params.temperature=0.1"])
    assert cfg.optim.lr == 0.3 and cfg.trainer.max_epochs == 2 and cfg.data.train_subset == 500
    assert cfg.augment.pipeline[0]["scale"] == [0.2, 1.0] and cfg.method_params().temperature == 0.1


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["optim.lrr=0.1"], r"unknown recipe key 'optim.lrr' \(did you mean 'optim.lr'\?\)"),
        (["optim.lr=fast"], r"recipe key 'optim.lr': expected a number, got 'fast'"),
        (["trainer.max_epochs=2.5"], r"'trainer.max_epochs': expected an integer"),
        (["data.batch_size=true"], r"'data.batch_size': expected an integer"),
        (["params.temprature=0.1"], r"unknown recipe key 'params.temprature' \(did you mean 'params.temperature'\?\)"),
        (["params.temperature=-1"], r"'params.temperature' must be positive"),
        (["augment.pipeline.0.name=rot"], r"augment.pipeline\[0\]: unknown transform 'rot'"),
        (["augment.views=3"], r"'augment.views': simclr uses exactly 2 views"),
        (["trainer.devices=4", "data.batch_size=2"], r"'data.batch_size' \(2\) is smaller than the number of processes \(4"),
        (["trainer.devices=3", "data.batch_size=128"], r"must divide evenly over 3 processes"),
        (["data.train_subset=10"], r"'data.train_subset' \(10\) is smaller than 'data.batch_size'"),
        (["optim.warmup_epochs=50"], r"'optim.warmup_epochs' \(50.0\) must lie within"),
        (["trainer.accelerator=cpu", "trainer.precision=16-mixed"], r"float16 needs a GPU"),
        (["trainer.strategy=fsdp"], r"'trainer.strategy' \(fsdp\): sharded strategies .* not supported yet .*; use ddp"),
        (["trainer.strategy=deepspeed_stage_3"], r"'trainer.strategy' \(deepspeed_stage_3\): sharded strategies"),
        (["method=byol"], r"unknown method 'byol'"),
        (["data.mean=[0.5]"], r"'data.mean' and 'data.std' must be given together"),
        (["nonsense=1"], r"unknown recipe key 'nonsense'"),
        (["optim.lr"], r"not of the form key=value"),
        (["data.format=tar"], r"'data.format' must be array or shards"),
        (["data.format=shards"], r"'data.root': data.format=shards needs the folder"),
        (["data.format=shards", "data.root=x", "data.train_subset=256"], r"'data.train_subset' does not apply"),
        (["data.format=shards", "data.root=x", "data.image_size=16"], r"'data.image_size' does not apply"),
    ],
)
def test_bad_recipes_fail_naming_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_recipe("simclr-digits", overrides)


def test_unknown_recipe_and_file_recipes(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown recipe 'simclr-digit' \(did you mean 'simclr-digits'\?\)"):
        load_recipe("simclr-digit")
    path = tmp_path / "mine.yaml"
    path.write_text("method: simsiam\ndata: {name: digits, channels: 1, batch_size: 64}\n")
    assert load_recipe(str(path)).method == "simsiam"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_recipe(str(path))
    path.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(str(path))


def test_set_path_and_parse_overrides():
    data = {"a": {"b": [1, {"c": 2}]}}
    set_path(data, "a.b.1.c", 5)
    set_path(data, "x.y", 1)
    assert data == {"a": {"b": [1, {"c": 5}]}, "x": {"y": 1}}
    with pytest.raises(ConfigError, match="list index"):
        set_path(data, "a.b.9.c", 1)
    assert parse_overrides(["a=1", "b=x", "c=[1, 2]", "d=null"]) == [("a", 1), ("b", "x"), ("c", [1, 2]), ("d", None)]
