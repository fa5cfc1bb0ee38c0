"""One encoder format for every modality (runs/encoders.py): written and read by the same
code, files of the earlier per-modality writers load, newer formats and wrong modalities
are refused naming the file."""

from __future__ import annotations

import json

import pytest
import torch

from invlab.errors import CheckpointError
from invlab.nn import Encoder, PatchTransformer, resnet18
from invlab.runs import load_encoder
from invlab.runs.encoders import ENCODER_FORMAT, export_encoder, load_exported_encoder
from invlab.runs.timeseries import export_series_encoder, load_series_encoder


def _image():
    torch.manual_seed(0)
    return Encoder(resnet18(width=4, stem="cifar", in_channels=1), [0.5], [0.25]).eval()


def _series():
    torch.manual_seed(0)
    return PatchTransformer(2, 32, patch_len=8, stride=8, d_model=16, n_heads=2).eval()


def test_both_modalities_round_trip_through_the_one_writer_and_reader(tmp_path):
    image, series = _image(), _series()
    export_encoder(image, tmp_path / "image", modality="image", method="simclr")
    export_series_encoder(series, tmp_path / "series", method="timedrl")
    x, s = torch.rand(2, 1, 8, 8), torch.randn(2, 2, 32)
    for folder, module, inp, modality in ((tmp_path / "image", image, x, "image"),
                                          (tmp_path / "series", series, s, "timeseries")):
        for loader in (load_encoder, load_exported_encoder):
            loaded, meta = loader(folder)
            assert type(loaded) is type(module) and not loaded.training
            assert meta["modality"] == modality and meta["format_version"] == ENCODER_FORMAT
            torch.testing.assert_close(loaded(inp), module(inp))
    series_meta = json.loads((tmp_path / "series" / "encoder.json").read_text())
    # the layout the time-series writer used before it shared this one
    assert list(series_meta)[:8] == ["format", "format_version", "invlab_version", "modality", "backbone",
                                     "feature_dim", "num_patches", "method"]
    assert series_meta["feature_dim"] == 16 and series_meta["num_patches"] == series.num_patches


def test_a_description_without_modality_is_an_image_encoder(tmp_path):
    """The first image exports recorded no modality; they still load, as images only."""
    image = _image()
    export_encoder(image, tmp_path)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert "modality" not in meta
    loaded, _ = load_exported_encoder(tmp_path, modality="image")
    assert isinstance(loaded, Encoder)
    with pytest.raises(CheckpointError, match=r"encoder.json: not a time-series invlab encoder description "
                                              r"\(it describes a image encoder\)"):
        load_series_encoder(tmp_path)


def test_newer_formats_and_foreign_files_are_refused_naming_the_file(tmp_path):
    export_series_encoder(_series(), tmp_path)
    meta_path = tmp_path / "encoder.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": ENCODER_FORMAT + 1, "invlab_version": "9.0"}))
    with pytest.raises(CheckpointError, match=r"encoder.json: written by a newer invlab \(9.0, format 2\); upgrade"):
        load_encoder(tmp_path)
    meta_path.write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(CheckpointError, match="encoder.json: not an invlab encoder description"):
        load_exported_encoder(tmp_path)
    meta_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="encoder.json: cannot read the encoder description"):
        load_exported_encoder(tmp_path)
    meta_path.write_text(json.dumps({**meta, "backbone": {"arch": "no_such_net"}}))
    with pytest.raises(CheckpointError, match="cannot rebuild the encoder"):
        load_exported_encoder(tmp_path)


def test_a_checkpoint_of_a_modality_without_checkpoint_loading_says_so(tmp_path):
    (tmp_path / "config.yaml").write_text("method: timedrl\n")
    (tmp_path / "checkpoints").mkdir()
    torch.save({"state_dict": {}}, tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(CheckpointError, match="timeseries runs load from their exported encoder, not a checkpoint"):
        load_encoder(tmp_path)
