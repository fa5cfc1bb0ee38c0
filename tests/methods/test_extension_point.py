"""The documented extension point (docs/architecture.md, "How to add a method"): a method
defined in a module outside invlab, registered explicitly, is named by a recipe and trained
from it, with nothing in ``invlab.runs`` changed."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from invlab.errors import ConfigError
from invlab.methods.registry import BUILTIN, METHODS, register_method, registered, unregister_method
from invlab.runs import evaluate, load_encoder, load_recipe, pretrain

TOY_METHOD = '''
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from invlab.errors import ConfigError
from invlab.methods.base import SSLMethod, StepOutput
from invlab.methods.spec import MethodSpec


@dataclass
class ToyParams:
    scale: float = 1.0
    width: int = 8


class Toy(SSLMethod):
    """Two views pulled together: cosine loss on a linear projection."""

    def __init__(self, encoder, views, *, scale: float = 1.0, width: int = 8, **kwargs):
        super().__init__(encoder, views, **kwargs)
        self.projector = torch.nn.Linear(encoder.feature_dim, width)
        self.scale = scale

    def training_loss(self, views):
        b = views[0].x.shape[0]
        h = self.encoder(views.cat())
        z1, z2 = F.normalize(self.projector(h), dim=1).chunk(2)
        loss = self.scale * (2 - 2 * (z1 * z2).sum(1).mean())
        return StepOutput(loss, {"toy_cosine": loss}, h[:b])


def _validate(cfg):
    if cfg.params.scale <= 0:
        raise ConfigError(f"recipe key 'params.scale' must be positive, got {cfg.params.scale}")


SPEC = MethodSpec(name="toy", modality="image", cls=Toy, params=ToyParams, views=2, validate=_validate)
'''

TOY_RECIPE = """
method: toy
params: {scale: 2.0, width: 4}
data: {name: digits, channels: 1, batch_size: 32, train_subset: 64, test_subset: 32}
model: {backbone: resnet18, stem: cifar, width: 4, channels_last: false}
augment:
  views: 2
  pipeline:
    - {name: crop, size: 8, scale: [0.5, 1.0]}
optim: {name: sgd, lr: 0.1, warmup_epochs: 0}
trainer: {max_epochs: 1, limit_train_batches: 1, enable_progress_bar: false, accelerator: cpu, devices: 1}
monitor: {knn: false, probe: false}
"""


@pytest.fixture
def toy_module(tmp_path):
    path = tmp_path / "toy_method.py"
    path.write_text(TOY_METHOD)
    spec = importlib.util.spec_from_file_location("toy_method", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_method"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("toy_method", None)


def test_a_toy_method_trains_one_step_from_a_recipe(tmp_path, toy_module):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(TOY_RECIPE)
    with pytest.raises(ConfigError, match="unknown method 'toy'"):
        load_recipe(str(recipe))
    with registered(toy_module.SPEC):
        cfg = load_recipe(str(recipe))
        assert type(cfg.params).__name__ == "ToyParams" and cfg.params.scale == 2.0 and cfg.params.width == 4
        assert cfg.modality.name == "image"
        with pytest.raises(ConfigError, match=r"'params.scale' must be positive, got -1"):
            load_recipe(str(recipe), ["params.scale=-1"])
        with pytest.raises(ConfigError, match=r"unknown recipe key 'params.widht' \(did you mean 'params.width'\?\)"):
            load_recipe(str(recipe), ["params.widht=3"])
        with pytest.raises(ConfigError, match=r"'augment.views': toy uses exactly 2 views, got 3"):
            load_recipe(str(recipe), ["augment.views=3"])
        summary = pretrain(cfg, tmp_path / "run", progress=False)
        assert summary["method"] == "toy" and summary["global_step"] == 1
        assert torch.isfinite(torch.tensor(summary["metrics"]["train/toy_cosine"]))
        encoder, meta = load_encoder(tmp_path / "run")
        assert meta["method"] == "toy" and meta["modality"] == "image"
        # the run's checkpoint holds the toy's own module and the trained encoder
        ckpt_encoder, _ = load_encoder(tmp_path / "run" / "checkpoints" / "last.ckpt")
        x = torch.rand(3, 1, 8, 8)
        torch.testing.assert_close(ckpt_encoder(x), encoder(x))
        result = evaluate(tmp_path / "run", "knn", k=5, progress=False, write=False)
        assert 0.0 <= result["top1"] <= 1.0
    assert "toy" not in METHODS


def test_registering_is_explicit_and_refuses_a_taken_name(toy_module):
    assert [spec.name for spec in BUILTIN] == list(METHODS)  # nothing registers itself on import
    register_method(toy_module.SPEC)
    try:
        with pytest.raises(ValueError, match="'toy' is already registered"):
            register_method(toy_module.SPEC)
    finally:
        unregister_method("toy")
    with pytest.raises(ValueError, match="already registered"):
        register_method(METHODS["simclr"])
    with pytest.raises(ValueError, match="built-in"):
        unregister_method("simclr")
    with pytest.raises(TypeError, match="MethodSpec"):
        register_method(toy_module.Toy)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_builtin_params_dataclass_matches_its_constructor(name):
    """The params fields are passed to the class as keyword arguments: a field the
    constructor does not take would fail only when a run starts."""
    import inspect

    spec = METHODS[name]
    accepted = set()
    for cls in spec.cls.__mro__:
        if "__init__" in vars(cls):
            accepted |= set(inspect.signature(cls.__init__).parameters)
    missing = set(spec.params.__dataclass_fields__) - accepted
    assert not missing, f"{name}: params {sorted(missing)} are not keyword arguments of {spec.cls.__name__}"
