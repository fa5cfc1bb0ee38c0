"""The accelerator switches of a run: torch.compile of the encoder, cuDNN benchmark,
pinned memory, and their recipe validation."""

from __future__ import annotations

import pytest
import torch

from invlab.errors import ConfigError
from invlab.methods import SimCLR
from invlab.nn import Encoder, HeadSpec, resnet18
from invlab.runs.config import load_recipe
from invlab.runs.image.setup import pin_memory
from invlab.runs.pretrain_run import compile_encoder, make_trainer
from invlab.runs.run_dir import RunDir
from invlab.transforms import Compose, HorizontalFlip, MultiViewSampler, RandomResizedCrop


def _simclr():
    enc = Encoder(resnet18(width=4, in_channels=1), [0.5], [0.25], channels_last=True)
    views = MultiViewSampler(Compose([RandomResizedCrop(8, scale=(0.5, 1.0)), HorizontalFlip()]))
    return SimCLR(enc, views, num_classes=4, projector=HeadSpec([16], 8))


def test_compiled_encoder_gives_the_same_features_and_keeps_its_state_dict_keys():
    torch.manual_seed(0)
    m = _simclr().eval()
    x = torch.rand(4, 1, 8, 8)
    keys, before = list(m.state_dict()), m.encoder(x)
    compile_encoder(m, backend="eager")  # dynamo tracing without a compiler: fast on any CPU
    assert m.encoder._compiled_call_impl is not None
    assert list(m.state_dict()) == keys  # checkpoints and exports unchanged
    torch.testing.assert_close(m.encoder(x), before, rtol=0, atol=0)


def test_compile_refuses_a_method_without_an_encoder():
    with pytest.raises(ConfigError, match="trainer.compile"):
        compile_encoder(torch.nn.Linear(2, 2))


def test_compile_mode_is_validated_naming_the_key():
    cfg = load_recipe("simclr-digits", ["trainer.compile=true", "trainer.compile_mode=max-autotune"])
    assert cfg.trainer.compile and cfg.trainer.compile_mode == "max-autotune"
    with pytest.raises(ConfigError, match="trainer.compile_mode"):
        load_recipe("simclr-digits", ["trainer.compile_mode=fastest"])


def test_cudnn_benchmark_on_unless_deterministic(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)  # restored afterwards
    run = RunDir(tmp_path / "run")
    make_trainer(load_recipe("simclr-digits", ["trainer.accelerator=cpu"]), run, progress=False)
    assert torch.backends.cudnn.benchmark
    make_trainer(load_recipe("simclr-digits", ["trainer.accelerator=cpu", "trainer.deterministic=true"]), run,
                 progress=False)
    assert not torch.backends.cudnn.benchmark


def test_pin_memory_follows_the_accelerator_unless_set():
    auto = load_recipe("simclr-digits", ["trainer.accelerator=cpu"])
    assert pin_memory(auto) is False
    assert pin_memory(load_recipe("simclr-digits", ["data.pin_memory=true"])) is True
    assert pin_memory(load_recipe("simclr-digits", ["trainer.accelerator=auto"])) == torch.cuda.is_available()
