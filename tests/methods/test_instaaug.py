"""InstaAug / Augerino methods: the module step changes only the module (model in eval
mode, fresh samples), a frozen module does not move, Augerino's widths train with the
model, SimCLR pairs its crops, recipes are validated, and kill-and-resume is exact."""

from __future__ import annotations

import json
import subprocess
import sys

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from invlab.errors import ConfigError
from invlab.methods.instaaug import InstaAugSimCLR, InstaAugSupervised, LearnedAugmentSpec
from invlab.nn import Encoder, resnet18
from invlab.nn.heads import HeadSpec
from invlab.runs.checkpoint import safe_torch_load
from invlab.runs.config import load_recipe
from invlab.runs.pretrain_run import resume_position
from invlab.transforms import Compose, MultiViewSampler
from tests.run_helpers import sigkill_when_checkpointed


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _digits(n=64):
    from invlab.data import load_digits_array

    d = load_digits_array("train")
    idx = np.arange(n)
    return {"image": torch.from_numpy(d.images[idx]), "label": torch.from_numpy(d.labels[idx]).long(),
            "index": torch.from_numpy(idx)}


def _supervised(**spec):
    torch.manual_seed(0)
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    views = MultiViewSampler(Compose([]), num_views=1)
    aug = LearnedAugmentSpec(**{"crop_scales": [[2, 0.75]], "module_optimizer": "adam", "module_lr": 1e-2, **spec})
    return InstaAugSupervised(enc, views, num_classes=10, augmentation=aug)


@pytest.mark.parametrize("seed", [0, 42, 2**31, 2**62])
def test_trains_at_any_seed(seed, monkeypatch):
    """Seeds from 19 up overflowed the step generator; the module's own streams hash too."""
    m = _supervised(ranges=[{"name": "rotate", "degrees": [-90, 90]}])
    m.seed = seed
    monkeypatch.setattr(type(m), "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: 3), raising=False)
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    monkeypatch.setattr(type(m), "global_step", property(lambda self: 5), raising=False)
    loss = m.training_step(_digits(16), 17)
    assert torch.isfinite(loss)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_module_step_updates_only_the_module_with_the_model_in_eval_mode():
    m = _supervised(ranges=[{"name": "rotate", "degrees": [-90, 90]}])
    model_before, module_before = _state(m.encoder), _state(m.invariance)
    head_before = _state(m.classifier)
    m.train()
    terms = m.module_step(_digits(), 0)
    assert set(terms) == {"module_loss", "module_entropy"}
    assert all(torch.equal(v, model_before[k]) for k, v in m.encoder.state_dict().items()), \
        "the module step must not touch the model (weights or BatchNorm statistics)"
    assert all(torch.equal(v, head_before[k]) for k, v in m.classifier.state_dict().items())
    changed = [k for k, v in m.invariance.state_dict().items() if not torch.equal(v, module_before[k])]
    assert any("range_head" in k for k in changed) and any("cell_scores" in k or "full_score" in k or
                                                           "scale_bias" in k for k in changed)
    assert m.encoder.training and m.classifier.training, "train mode must be restored"
    assert all(p.grad is None for p in m.encoder.parameters())


def test_crop_only_module_step_is_the_score_function_gradient_without_a_graph_through_the_model():
    """Crops alone: the module step skips the graph through the model (the losses are
    constants of the score function); its update must equal the naive one, computed with
    that graph, on the same fresh samples."""
    import copy

    from invlab.losses.instaaug import score_function_loss
    from invlab.methods.instaaug import _MODULE_STREAM, _stream_generator

    m = _supervised(module_optimizer="sgd", module_lr=1e-2, entropy="none")
    m.train()
    ref = copy.deepcopy(m)
    batch = _digits(32)
    x = batch["image"].float() / 255.0
    ref.encoder.eval()
    ref.classifier.eval()
    dist = ref.distribution(x)
    g = _stream_generator(_MODULE_STREAM, ref.seed, 0, 0, 0)
    xs, log_prob = ref.transform_with(x, dist, 2, g)
    losses = ref.per_sample_loss(xs, 2, batch["label"])
    assert losses.requires_grad  # the naive way builds the graph through the model
    params = [p for p in ref.invariance.parameters() if p.requires_grad]
    grads = torch.autograd.grad(losses.mean() + score_function_loss(log_prob, losses), params, allow_unused=True)
    m.module_step(batch, 0)
    moved = 0
    for (name, p), p0, gr in zip(m.invariance.named_parameters(), params, grads):
        expected = p0.detach() if gr is None else p0.detach() - 1e-2 * gr  # SGD's first step: -lr * grad
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-7, msg=name)
        moved += gr is not None and bool(gr.abs().sum() > 0)
    assert moved > 0
    assert all(p.grad is None for p in m.encoder.parameters())


def _fit(m, steps, record):
    batches = [_digits(32) for _ in range(steps)]

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            record.append(_state(pl_module.invariance))

    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Record()], accelerator="cpu", devices=1)
    trainer.fit(m, loader)


def test_frozen_module_does_not_change_during_warm_up():
    m = _supervised(freeze_fraction=0.5)
    record: list[dict] = []
    _fit(m, 6, record)
    # global_step / 6 < 0.5 during batches 0, 1, 2: frozen; batch 3 onwards: updated
    same = [all(torch.equal(a[k], b[k]) for k in a) for a, b in zip(record, record[1:])]
    assert same == [True, True, True, False, False], same


def test_model_optimizer_excludes_the_module_and_augerino_widths_are_not_decayed():
    m = _supervised()
    ids = {id(p) for g in m.optimizer_groups() for p in g["params"]}
    assert not ids & {id(p) for p in m.invariance.parameters()}
    assert {id(p) for p in m.encoder.parameters()} <= ids
    a = _supervised(kind="augerino", augerino_generators=["rotation"])
    batch = _digits(16)
    a.log = lambda *args, **kw: None
    views = a.make_views(batch, 0)
    out = a.training_loss(views)
    out.loss.backward()
    assert a.augerino.theta.grad is not None and float(a.augerino.theta.grad.abs()) > 0
    widths_group = [g for g in a.optimizer_groups() if any(p is a.augerino.theta for p in g["params"])]
    assert len(widths_group) == 1 and widths_group[0]["weight_decay"] == 0.0


def test_simclr_module_step_pairs_crops_and_needs_two_pairs():
    torch.manual_seed(0)
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    views = MultiViewSampler(Compose([]), num_views=2)
    aug = LearnedAugmentSpec(crop_scales=[[2, 0.75]], entropy="target", freeze_fraction=0.0, module_lr=1e-2,
                             module_optimizer="adam")
    m = InstaAugSimCLR(enc, views, projector=HeadSpec([16], 8), augmentation=aug)
    m.log = lambda *args, **kw: None
    batch = _digits(16)
    v = m.make_views(batch, 0)
    assert len(v) == 2 and v[0].x.shape == (16, 1, 8, 8)
    assert not torch.equal(v[0].x, v[1].x), "each view gets its own crop"
    xs = torch.rand(2 * 2 * 16, 1, 8, 8)
    assert m.per_sample_loss(xs, 2, None).shape == (2, 16)
    before = _state(m.invariance)
    terms = m.module_step(batch, 0)
    assert np.isfinite(terms["module_loss"])
    assert any(not torch.equal(v, before[k]) for k, v in m.invariance.state_dict().items())
    with pytest.raises(ValueError, match="samples"):
        InstaAugSimCLR(enc, views, augmentation=LearnedAugmentSpec(samples=1))
    with pytest.raises(ValueError, match="supervised training only"):
        InstaAugSimCLR(enc, views, augmentation=LearnedAugmentSpec(kind="augerino"))


def test_bad_configurations_are_clear_errors():
    with pytest.raises(ConfigError, match=r"params.augmentation.ranges.*no continuous parameter"):
        load_recipe("instaaug-digits", ["params.augmentation.ranges=[{name: hflip}]"])
    with pytest.raises(ConfigError, match="samples' must be >= 2"):
        load_recipe("instaaug-digits", ["params.augmentation.samples=1"])
    with pytest.raises(ConfigError, match="kind"):
        load_recipe("instaaug-digits", ["params.augmentation.kind=magic"])
    with pytest.raises(ConfigError, match="augerino_generators"):
        load_recipe("augerino-digits", ["params.augmentation.augerino_generators=[twist]"])
    # caught when the recipe is read, naming the key (not deep inside the module's constructor)
    for recipe, override, key in [
        ("instaaug-digits", "crop_scales=[]", "crop_scales' is empty"),
        ("instaaug-digits", "crop_scales=[[0, 0.5]]", "crop_scales': each scale"),
        ("instaaug-digits", "crop_scales=[[2.5, 0.5]]", "crop_scales': each scale"),
        ("instaaug-digits", "crop_scales=[[2, 1.5]]", "crop_scales': each scale"),
        ("instaaug-digits", "crop_scales=[[2]]", "crop_scales': each scale"),
        ("instaaug-digits", "full_image_prob=1.0", "full_image_prob"),
        ("instaaug-digits", "init_fraction=0", "init_fraction"),
        ("instaaug-digits", "module_widths=[8]", "module_widths"),
        ("instaaug-digits", "module_warmup_steps=-1", "module_warmup_steps"),
        ("instaaug-digits", "entropy_factor=0.5", "entropy_factor"),
        ("instaaug-simclr-cifar10", "entropy_target=[3.0]", "entropy_target"),
        ("instaaug-simclr-cifar10", "entropy_strength=-0.3", "entropy_strength"),
        ("augerino-digits", "augerino_reg=-0.01", "augerino_reg"),
        ("augerino-digits", "augerino_init_width=0", "augerino_init_width"),
    ]:
        with pytest.raises(ConfigError, match=f"params.augmentation.{key}"):
            load_recipe(recipe, [f"params.augmentation.{override}"])


def _cli(*args):
    return [sys.executable, "-m", "invlab.cli.main", *args]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    args = ["pretrain", "--recipe", "instaaug-digits", "trainer.max_epochs=3", "model.width=4",
            "params.augmentation.ranges=[{name: rotate, degrees: 60}]", "trainer.checkpoint_every_n_steps=1",
            "trainer.log_every_n_steps=2", "--no-progress"]
    sigkill_when_checkpointed(_cli(*args, "--out", str(killed)), killed,
                              lambda step: step >= 13 and step % 10 != 0, timeout=240)  # inside the 2nd epoch (10 steps each)
    ckpt = killed / "checkpoints" / "last.ckpt"
    state = safe_torch_load(ckpt)
    _, epoch, done = resume_position(state)
    assert 0 < done < 10, "killed outside the middle of an epoch"
    assert "augment_optimizer" in state["invlab"] and state["invlab"]["augment_entropies"].numel() > 0
    resumed = subprocess.run(_cli("pretrain", "--resume", str(killed), "--no-progress"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done_ref = subprocess.run(_cli(*args, "--out", str(reference)), capture_output=True, text=True)
    assert done_ref.returncode == 0, done_ref.stderr[-3000:]
    wa, wb = load_file(str(killed / "encoder.safetensors")), load_file(str(reference / "encoder.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    sa = safe_torch_load(killed / "checkpoints" / "last.ckpt")
    sb = safe_torch_load(reference / "checkpoints" / "last.ckpt")
    module_keys = [k for k in sa["state_dict"] if k.startswith("invariance.") or "entropy_control" in k]
    assert module_keys and all(torch.equal(sa["state_dict"][k], sb["state_dict"][k]) for k in module_keys)
    a, b = json.loads((killed / "summary.json").read_text()), json.loads((reference / "summary.json").read_text())
    assert a["metrics"] == b["metrics"]
    assert (killed / "metrics.csv").read_text() == (reference / "metrics.csv").read_text()


def test_multi_process_instaaug_is_refused_not_silently_unsynchronised():
    from types import SimpleNamespace

    m = _supervised()
    m._trainer = SimpleNamespace(world_size=2)
    with pytest.raises(RuntimeError, match="one process only"):
        m.on_fit_start()
    a = _supervised(kind="augerino", augerino_generators=["rotation"])
    a._trainer = SimpleNamespace(world_size=2)
    a.on_fit_start()  # Augerino's widths train in the model step: DDP synchronises them
