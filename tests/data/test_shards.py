"""Tar shards for sets larger than memory: written and read back bit for bit (decoded
arrays as PNG, image folders as their own bytes), readable by WebDataset itself, an epoch
order that is a permutation with local reads, every bad shard a clear error naming the
file, and a 2-process run on shards that reads every sample exactly once per epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from invlab.cli.main import main
from invlab.data.arrays import ImageArray
from invlab.data.digits import load_digits_array
from invlab.data.loader import ImageDataModule
from invlab.data.shards import ImageShards, write_array_shards, write_folder_shards
from invlab.errors import DataError
from tests.run_helpers import read_records, run_recorded


def _array(n=50, channels=3, seed=0) -> ImageArray:
    g = np.random.default_rng(seed)
    return ImageArray(g.integers(0, 256, (n, channels, 6, 5), dtype=np.uint8), np.arange(n) % 4,
                      ["a", "b", "c", "d"], "synthetic")


def test_arrays_round_trip_bit_for_bit_and_webdataset_reads_the_shards(tmp_path):
    data = _array()
    write_array_shards(data, tmp_path, "train", samples_per_shard=16)
    shards = ImageShards.open(tmp_path, "train")
    assert len(shards) == 50 and shards.meta["num_shards"] == 4 and shards.size == (6, 5) and shards.channels == 3
    assert np.array_equal(shards.read(np.arange(50)), data.images)
    assert np.array_equal(shards.labels, data.labels) and shards.classes == data.classes
    batch = shards.dataset().__getitems__([7, 3, 40])
    assert torch.equal(batch["image"], torch.from_numpy(data.images[[7, 3, 40]]))
    assert batch["index"].tolist() == [7, 3, 40] and batch["label"].tolist() == [3, 3, 0]
    # the shards are plain WebDataset: its own reader sees every sample with its label
    urls = [str(shards.shard_path(k)) for k in range(4)]
    seen = {int(s["__key__"]): int(s["cls"]) for s in wds.WebDataset(urls, shardshuffle=False)}
    assert seen == {i: int(data.labels[i]) for i in range(50)}


def test_a_folder_is_sharded_from_its_files_bytes_and_decoded_on_read(tmp_path):
    data = _array(12, seed=1)
    for i in range(12):
        folder = tmp_path / "src" / data.classes[data.labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i].transpose(1, 2, 0)).save(folder / f"{i:02d}.png")
    write_folder_shards(tmp_path / "src", tmp_path / "out", "train", samples_per_shard=5)
    shards = ImageShards.open(tmp_path / "out", "train")
    # folder order: class by class, files sorted; compare each decoded image with its file
    files = sorted((tmp_path / "src").glob("*/*.png"))
    for i, f in enumerate(files):
        assert np.array_equal(shards.read([i])[0], np.asarray(Image.open(f)).transpose(2, 0, 1))
    assert shards.labels.tolist() == [["a", "b", "c", "d"].index(f.parent.name) for f in files]


def test_epoch_order_is_a_permutation_with_local_reads_that_changes_each_epoch(tmp_path):
    write_array_shards(_array(200), tmp_path, "train", samples_per_shard=40)
    shards = ImageShards.open(tmp_path, "train", shuffle_block=20)
    orders = [shards.epoch_order(0, e) for e in range(3)]
    for order in orders:
        assert sorted(order) == list(range(200))
        for s in range(0, 200, 20):  # a block of 20 consecutive positions reads from one shard
            assert len({int(shards.shard[i]) for i in order[s:s + 20]}) == 1
    assert orders[0] != orders[1] and orders[0] == shards.epoch_order(0, 0) != shards.epoch_order(1, 0)


def test_the_data_module_shards_the_stream_over_processes_exactly_once(tmp_path):
    write_array_shards(_array(96), tmp_path, "train", samples_per_shard=24)
    shards = ImageShards.open(tmp_path, "train", shuffle_block=8)

    class Trainer:
        world_size, global_rank = 3, 0

    for epoch in range(2):
        seen = []
        for rank in range(3):
            Trainer.global_rank = rank
            dm = ImageDataModule(shards, None, batch_size=8)
            dm.trainer = Trainer()
            loader = dm.train_dataloader()
            loader.sampler.set_epoch(epoch)
            seen += [i for b in loader for i in b["index"].tolist()]
        assert sorted(seen) == list(range(96)), epoch


@pytest.fixture
def written(tmp_path):
    write_array_shards(_array(30), tmp_path, "train", samples_per_shard=10)
    return tmp_path


def test_a_missing_shard_is_one_error_naming_the_file(written):
    (written / "train-000001.tar").unlink()
    with pytest.raises(DataError, match=r"train-000001\.tar: shard missing \(3 expected by .*train\.json\)"):
        ImageShards.open(written, "train")


def test_a_missing_index_or_description_names_the_file(written, tmp_path):
    (written / "train-index.npz").unlink()
    with pytest.raises(DataError, match=r"train-index\.npz: missing"):
        ImageShards.open(written, "train")
    with pytest.raises(DataError, match=r"test\.json: missing"):
        ImageShards.open(written, "test")


def test_a_truncated_shard_names_the_file_and_the_sample(written):
    shards = ImageShards.open(written, "train")
    path = written / "train-000002.tar"
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"train-000002\.tar: truncated shard: sample 2\d needs bytes"):
        shards.read(np.arange(30))


def test_corrupt_image_bytes_name_the_file_and_the_sample(written):
    shards = ImageShards.open(written, "train")
    path = written / "train-000000.tar"
    raw = bytearray(path.read_bytes())
    i = 4
    start = int(shards.offset[i])
    raw[start:start + int(shards.nbytes[i])] = b"\0" * int(shards.nbytes[i])
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train-000000\.tar \(sample 000000004\): cannot decode image"):
        shards.read([3, 4])
    assert shards.read([3]).shape == (1, 3, 6, 5)  # the other samples still read


def test_a_hand_edited_description_or_index_is_refused(written):
    (written / "train.json").write_text("{not json")
    with pytest.raises(DataError, match=r"train\.json: not valid JSON"):
        ImageShards.open(written, "train")
    (written / "train.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match=r"train\.json: not an invlab shard description"):
        ImageShards.open(written, "train")


def test_the_cli_writes_a_recipes_splits(tmp_path, capsys):
    assert main(["shards", str(tmp_path / "s"), "--recipe", "simclr-digits", "data.train_subset=128",
                 "data.test_subset=64", "--samples-per-shard", "50"]) == 0
    train, test = ImageShards.open(tmp_path / "s", "train"), ImageShards.open(tmp_path / "s", "test")
    assert len(train) == 128 and len(test) == 64 and train.channels == 1
    digits = load_digits_array("train").subset(128, 0)
    assert np.array_equal(train.read(np.arange(128)), digits.images)
    assert main(["shards", str(tmp_path / "t")]) == 2
    assert "exactly one of --recipe or --folder" in capsys.readouterr().err


@pytest.mark.ddp
@pytest.mark.slow
def test_two_processes_on_shards_read_every_sample_exactly_once_per_epoch(tmp_path):
    shards = tmp_path / "shards"
    assert main(["shards", str(shards), "--recipe", "simclr-digits", "data.train_subset=256",
                 "data.test_subset=64", "--samples-per-shard", "100"]) == 0
    run_recorded("simclr-digits", tmp_path / "run", [
        "data.format=shards", f"data.root={shards}", "data.batch_size=64", "trainer.max_epochs=3",
        "model.width=4", "model.projector.hidden=[16]", "model.projector.out=8", "monitor.knn_k=10",
        "trainer.check_val_every_n_epoch=3", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp",
        "trainer.enable_progress_bar=false"], record=tmp_path / "rec", cwd=tmp_path)
    rec = read_records(tmp_path / "rec")
    assert sorted(rec) == [0, 1]
    orders = []
    for epoch in range(3):
        per_rank = [[i for row in rec[r] if row["epoch"] == epoch for i in row["index"]] for r in (0, 1)]
        assert len(per_rank[0]) == len(per_rank[1]) == 128
        assert sorted(per_rank[0] + per_rank[1]) == list(range(256)), epoch  # 256 = 4 x 64: no remainder
        orders.append(per_rank[0])
    assert orders[0] != orders[1] != orders[2]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["global_step"] == 12 and 0 < summary["metrics"]["test/knn_top1"] <= 1



