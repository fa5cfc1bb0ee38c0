"""`invlab measure` beyond image runs: time-series runs (series transformations, parameter
recovery) and a user's own network from the command line (--model package.module:factory),
with the bad input a user will type."""

from __future__ import annotations

import json
import uuid

import pytest
import torch
from safetensors.torch import save_file

from invlab.cli.main import main
from invlab.runs.measure_run import load_user_model

USER_MODULE = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def gray():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def broken():
    raise RuntimeError("no GPU here")


def not_a_module():
    return 42
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user's module in a temporary folder on the import path; returns its name."""
    name = f"usernet_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _other_weights(name):
    torch.manual_seed(1)
    return {k: torch.randn_like(v) for k, v in load_user_model(f"{name}:build").state_dict().items()}


def test_measure_a_user_network_with_weights_and_named_layers(user_module, tmp_path, capsys):
    state = _other_weights(user_module)
    save_file(state, str(tmp_path / "w.safetensors"))
    out = tmp_path / "m"
    assert main(["measure", "--model", f"{user_module}:build", "--weights", str(tmp_path / "w.safetensors"),
                 "--layers", "0,output", "-t", "rotate,hue", "--input-size", "3", "32", "32", "--mean", "0.5", "0.5",
                 "0.5", "--std", "0.25", "0.25", "0.25", "--num-samples", "16", "--bootstrap", "10", "--metric", "l2",
                 "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    result = json.loads((out / "measure.json").read_text())
    assert result["model"] == f"{user_module}:build" and result["layers"] == ["0", "output"]
    assert {(r["transform"], r["layer"]) for r in result["invariance"]} == {
        (t, layer) for t in ("rotate", "hue") for layer in ("0", "output")}
    assert all(0 <= r["score"] < 5 for r in result["invariance"])
    # the weights are the file's, and the normalisation runs before the user's forward
    model = load_user_model(f"{user_module}:build", tmp_path / "w.safetensors", [0.5] * 3, [0.25] * 3)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    x = torch.rand(2, 3, 8, 8)
    plain = load_user_model(f"{user_module}:build", tmp_path / "w.safetensors")
    torch.testing.assert_close(model(x), plain((x - 0.5) / 0.25))


def test_state_dict_pt_and_a_file_path_factory(user_module, tmp_path):
    state = _other_weights(user_module)
    torch.save(state, tmp_path / "w.pt")
    model = load_user_model(f"{tmp_path / (user_module + '.py')}:build", tmp_path / "w.pt")
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--model", "no_such_module_xyz:build"], "cannot import 'no_such_module_xyz' (ModuleNotFoundError"),
        (["--model", "{mod}"], "expected package.module:factory"),
        (["--model", "{mod}:nope"], "has no callable 'nope'"),
        (["--model", "{mod}:broken"], "the factory raised RuntimeError: no GPU here"),
        (["--model", "{mod}:not_a_module"], "returned int, not a torch.nn.Module"),
        (["--model", "{mod}:build", "--weights", "{tmp}/missing.pt"], "missing.pt: file does not exist"),
        (["--model", "{mod}:build", "--weights", "{tmp}/partial.safetensors"], "missing key '0.bias'"),
        (["--model", "{mod}:build", "--weights", "{tmp}/shape.safetensors"],
         "key '0.weight' has shape (4, 3, 3, 3) in the file but (8, 3, 3, 3) in the model"),
        (["--model", "{mod}:build", "--weights", "{tmp}/extra.safetensors"], "unexpected key 'head.weight'"),
        (["--model", "{mod}:build", "--weights", "{tmp}/pickled.pt"], "cannot read it as .safetensors or a state-dict"),
        (["--model", "{mod}:build", "--mean", "0.5"], "--mean and --std go together"),
        (["--model", "{mod}:gray", "--mean", "0.5", "0.5", "0.5", "--std", "1", "1", "1", "--input-size", "1", "16",
          "16"], "--mean/--std have 3 values but the input has 1 channels"),
        (["--model", "{mod}:build", "--input-size", "3", "16", "32"], "square images"),
        (["--model", "{mod}:build", "--data", "run"], "--data run needs a run folder"),
        (["{tmp}", "--model", "{mod}:build"], "either MODEL"),
        ([], "either MODEL"),
    ],
)
def test_bad_user_models_are_one_line_naming_the_problem(argv, match, user_module, tmp_path, capsys):
    good = load_user_model(f"{user_module}:build").state_dict()
    save_file({k: v for k, v in good.items() if k != "0.bias"}, str(tmp_path / "partial.safetensors"))
    save_file({**good, "0.weight": torch.zeros(4, 3, 3, 3)}, str(tmp_path / "shape.safetensors"))
    save_file({**good, "head.weight": torch.zeros(2)}, str(tmp_path / "extra.safetensors"))
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")  # a whole pickled module, not a state dict
    argv = [a.format(mod=user_module, tmp=tmp_path) for a in argv]
    assert main(["measure", *argv, "--num-samples", "8", "--out", str(tmp_path / "m"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ts") / "run"
    assert main(["pretrain", "--recipe", "timedrl-ucr", "data.dataset=GunPoint", "model.d_model=16", "model.n_heads=2",
                 "trainer.max_epochs=1", "--out", str(run), "--no-progress"]) == 0
    return run


def test_measure_a_time_series_run(series_run, tmp_path, capsys):
    """Used to die with KeyError: 'mean' (the image loader read a series encoder)."""
    out = tmp_path / "m"
    assert main(["measure", str(series_run), "-t", "ts_jitter,time_warp", "--layers", "output,tokens",
                 "--equivariance", "--num-samples", "64", "--bootstrap", "20", "--out", str(out),
                 "--no-progress"]) == 0, capsys.readouterr().err
    result = json.loads((out / "measure.json").read_text())
    assert result["modality"] == "timeseries" and result["data"] == "GunPoint test series"
    assert result["transforms"] == ["ts_jitter", "time_warp"] and result["layers"] == ["output", "tokens"]
    assert len(result["invariance"]) == 2 * 2 * 2  # transforms x layers x metrics
    assert all(0 <= r["score"] < 5 and r["num_samples"] == 64 for r in result["invariance"])
    eq = {(r["transform"], r["layer"]): r for r in result["equivariance"]}
    assert set(eq) == {(t, layer) for t in ("ts_jitter", "time_warp") for layer in ("output", "tokens")}
    knots = eq[("time_warp", "tokens")]["params"]["time_warp.knots"]  # recovery of the warp's knots
    assert knots["metric"] == "r2" and knots["score"] <= 1.0 and knots["num_train"] + knots["num_test"] == 64
    assert eq[("ts_jitter", "output")]["params"] == {}  # a fixed noise level: nothing to recover
    assert "knots r2" in (out / "measure.md").read_text()
    assert (out / "measure.md").is_file() and (out / "invariance.png").is_file()


def test_measure_all_series_transformations_by_default(series_run, tmp_path):
    assert main(["measure", str(series_run), "--num-samples", "16", "--bootstrap", "5", "--metric", "l2",
                 "--out", str(tmp_path / "m"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "m" / "measure.json").read_text())
    assert result["transforms"] == ["magnitude_warp", "segment_permutation", "time_warp", "ts_jitter", "ts_masking",
                                    "ts_scaling", "window_crop", "window_slice"]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["-t", "rotate"], "'rotate' is not a time-series transformation; series encoders take: magnitude_warp"),
        (["--layers", "layer1"], "--layers: 'layer1': time-series encoders offer output, tokens"),
        (["--data", "controlled"], "--data controlled: time-series encoders are measured on their run's test series"),
    ],
)
def test_unsupported_series_measurements_are_one_line(series_run, argv, match, tmp_path, capsys):
    assert main(["measure", str(series_run), *argv, "--num-samples", "8", "--out", str(tmp_path / "m"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1, err
