"""Export and load encoders; never execute code from a checkpoint."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from invlab.errors import CheckpointError
from invlab.nn import Encoder, resnet18
from invlab.runs.checkpoint import atomic_torch_save, safe_torch_load
from invlab.runs.export import export_encoder, load_encoder


def _encoder():
    torch.manual_seed(0)
    return Encoder(resnet18(width=4, stem="cifar", in_channels=3), [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]).eval()


def test_export_roundtrip_gives_identical_features(tmp_path):
    enc = _encoder()
    export_encoder(enc, tmp_path, method="simclr")
    loaded, meta = load_encoder(tmp_path)
    x = torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(loaded(x), enc(x))
    assert meta["method"] == "simclr" and meta["feature_dim"] == 32
    loaded2, _ = load_encoder(tmp_path / "encoder.safetensors")
    torch.testing.assert_close(loaded2(x), enc(x))


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo owned > /tmp/invlab-owned",))


def test_crafted_pickle_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "x": _Payload()}, f)
    with pytest.raises(CheckpointError, match="refused to load.*could execute code"):
        safe_torch_load(path)
    torch.save({"state_dict": {}, "x": _Payload()}, path)  # the torch zip format too
    with pytest.raises(CheckpointError, match="refused to load"):
        safe_torch_load(path)


def test_truncated_and_missing_checkpoints(tmp_path):
    path = tmp_path / "ok.ckpt"
    atomic_torch_save({"w": torch.ones(100)}, path)
    assert torch.equal(safe_torch_load(path)["w"], torch.ones(100))
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        safe_torch_load(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        safe_torch_load(tmp_path / "none.ckpt")


def test_load_encoder_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="neither encoder.safetensors"):
        load_encoder(tmp_path)
    export_encoder(_encoder(), tmp_path)
    (tmp_path / "encoder.json").unlink()
    with pytest.raises(CheckpointError, match="encoder.json is missing"):
        load_encoder(tmp_path)


def test_atomic_save_keeps_the_old_file_when_saving_fails(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"v": torch.tensor(1)}, path)

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_torch_save({"v": Unsaveable()}, path)
    assert int(safe_torch_load(path)["v"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda text: text[: len(text) // 2], "encoder.json: cannot read the encoder description"),
        (lambda text: "[1, 2]", "the encoder description must be a JSON object, found list"),
        (lambda text: text.replace('"format_version": 1', '"format_version": "one"'), "written by a newer invlab"),
        (lambda text: text.replace('"backbone": {', '"backbone": 7, "x": {'), "cannot rebuild the encoder"),
        (lambda text: text.replace('"mean": [', '"mean": "grey", "m": ['), "cannot rebuild the encoder"),
    ],
)
def test_truncated_or_hand_edited_encoder_json_is_one_clear_error(edit, match, tmp_path, capsys):
    export_encoder(_encoder(), tmp_path)
    meta = tmp_path / "encoder.json"
    meta.write_text(edit(meta.read_text()))
    with pytest.raises(CheckpointError, match=match):
        load_encoder(tmp_path)
    from invlab.cli.main import main

    assert main(["measure", str(tmp_path), "-t", "rotate", "--num-samples", "8", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_safetensors_exports_are_written_like_checkpoints(tmp_path, monkeypatch):
    """Unique temporary name, fsync, rename: a crash mid-write leaves the old export intact."""
    from invlab.runs import checkpoint

    export_encoder(_encoder(), tmp_path)
    before = (tmp_path / "encoder.safetensors").read_bytes()
    synced = []
    real_fsync = checkpoint.os.fsync
    monkeypatch.setattr(checkpoint.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    torch.manual_seed(1)
    other = Encoder(resnet18(width=4, stem="cifar", in_channels=3), [0.4, 0.5, 0.6], [0.2, 0.25, 0.3])
    with pytest.raises(OSError, match="power cut"):
        export_encoder(other, tmp_path)
    assert synced  # the data reached the disk before the rename
    assert (tmp_path / "encoder.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.json", "encoder.safetensors"]
