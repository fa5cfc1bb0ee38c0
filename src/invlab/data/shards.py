"""Image sets larger than memory: WebDataset tar shards read by byte offset.

**Format.** A split ``S`` (``train``, ``test``) of a shard folder is ``S-000000.tar``,
``S-000001.tar``, ... written with ``webdataset.TarWriter`` (so any WebDataset pipeline
reads them too): sample ``i`` is the members ``<key>.<ext>`` (the encoded image: the
source file's bytes for an image folder, lossless PNG for a decoded array) and
``<key>.cls`` (the label as text), key ``i`` zero-padded. Next to them, ``S.json`` (class
names, counts, image size and channels) and ``S-index.npz``: for every sample its shard,
the image member's byte offset and size inside the tar, and its label. Nothing is decoded
up front and memory holds only the index (about 30 bytes per sample).

**Reading.** :class:`ImageShards` fetches a batch by seeking to each image's offset and
decoding it (in loader workers if ``num_workers > 0``). The epoch order
(:meth:`ImageShards.epoch_order`) keeps reads local: the shards are visited in an order
drawn per epoch and samples are shuffled only within consecutive blocks of
``shuffle_block`` samples, so a global batch reads from one or two shards; the processes
split that order exactly as they split an in-memory set
(:class:`~invlab.data.sharding.ShardedEpochSampler`: every sample once per epoch across
processes, resumable mid-epoch). Errors name the file: a missing shard, a shard shorter
than its index says, an image that does not decode, an index that does not match.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from invlab.data.arrays import ImageArray
from invlab.data.image_folder import scan_image_folder
from invlab.errors import DataError
from invlab.seeding import stream_generator

__all__ = ["ImageShards", "ShardDataset", "write_array_shards", "write_folder_shards", "SHARD_FORMAT"]

SHARD_FORMAT = "invlab-image-shards/1"
_KEY_DIGITS = 9


def _shard_name(split: str, k: int) -> str:
    return f"{split}-{k:06d}.tar"


def _encode_png(image: np.ndarray) -> bytes:
    """uint8 ``(C, H, W)`` -> PNG bytes (lossless)."""
    arr = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _write(out: Path, split: str, samples, n: int, samples_per_shard: int, meta: dict[str, Any]) -> Path:
    """``samples`` yields ``(ext, image bytes, label)`` for keys ``0..n-1``."""
    import webdataset as wds  # only the writer needs it

    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    out.mkdir(parents=True, exist_ok=True)
    shard_of = np.empty(n, np.int32)
    labels = np.empty(n, np.int64)
    writer = None
    for i, (ext, data, label) in enumerate(samples):
        k = i // samples_per_shard
        if i % samples_per_shard == 0:
            if writer is not None:
                writer.close()
            writer = wds.TarWriter(str(out / _shard_name(split, k)))
        writer.write({"__key__": f"{i:0{_KEY_DIGITS}d}", ext: data, "cls": str(int(label))})
        shard_of[i], labels[i] = k, label
    if writer is not None:
        writer.close()
    # byte offsets of the image members, read back from the tars just written
    offsets, sizes = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for k in range(int(np.ceil(n / samples_per_shard))):
        with tarfile.open(out / _shard_name(split, k)) as tar:
            for m in tar.getmembers():
                key, _, ext = m.name.partition(".")
                if ext != "cls":
                    i = int(key)
                    offsets[i], sizes[i] = m.offset_data, m.size
    np.savez(out / f"{split}-index.npz", shard=shard_of, offset=offsets, size=sizes, label=labels)
    meta = {"format": SHARD_FORMAT, "split": split, "num_samples": n, "samples_per_shard": samples_per_shard,
            "num_shards": int(np.ceil(n / samples_per_shard)), **meta}
    (out / f"{split}.json").write_text(json.dumps(meta, indent=1))
    return out


def write_array_shards(data: ImageArray, out: str | Path, split: str = "train",
                       samples_per_shard: int = 10_000) -> Path:
    """Write a decoded set (e.g. :func:`~invlab.data.load_cifar10`'s) as PNG shards."""
    meta = {"classes": list(data.classes), "channels": data.channels, "size": list(data.size),
            "source": data.source}
    gen = (("png", _encode_png(data.images[i]), int(data.labels[i])) for i in range(len(data)))
    return _write(Path(out), split, gen, len(data), samples_per_shard, meta)


def write_folder_shards(root: str | Path, out: str | Path, split: str = "train", samples_per_shard: int = 10_000,
                        channels: int | None = 3, size: int | tuple[int, int] | None = None) -> Path:
    """Write ``root/<class>/<image>`` as shards of the files' own bytes, without decoding
    them (a folder larger than memory streams through). ``channels`` / ``size`` are what
    the reader decodes to (``size=None``: every image must have the first one's size)."""
    files, labels, classes = scan_image_folder(root)
    if isinstance(size, int):
        size = (size, size)
    if size is None:
        with Image.open(files[0]) as img:
            size = (img.height, img.width)
    meta = {"classes": classes, "channels": channels, "size": list(size), "source": str(root)}
    gen = ((p.suffix.lower().lstrip("."), p.read_bytes(), y) for p, y in zip(files, labels))
    return _write(Path(out), split, gen, len(files), samples_per_shard, meta)


@dataclass
class ImageShards:
    """One split of a shard folder (see the module docstring): the index in memory, images
    read on demand. Offers what runs read from an :class:`~invlab.data.arrays.ImageArray`
    (``len``, ``labels``, ``classes``, ``num_classes``, ``channels``, ``size``)."""

    root: Path
    split: str
    meta: dict[str, Any]
    shard: np.ndarray
    offset: np.ndarray
    nbytes: np.ndarray
    labels: np.ndarray
    shuffle_block: int = 4096
    convert_mode: bool = False
    source: str = field(default="")

    @classmethod
    def open(cls, root: str | Path, split: str = "train", shuffle_block: int = 4096,
             convert_mode: bool = False) -> ImageShards:
        """Read ``root/<split>.json`` and its index; every shard file must exist."""
        root = Path(root)
        meta_path, index_path = root / f"{split}.json", root / f"{split}-index.npz"
        for p in (meta_path, index_path):
            if not p.is_file():
                raise DataError(f"{p}: missing; write shards with invlab.data.shards.write_array_shards / "
                                "write_folder_shards (or `invlab shards`)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{meta_path}: not valid JSON ({err}); rewrite the shards") from None
        if not isinstance(meta, dict) or meta.get("format") != SHARD_FORMAT:
            raise DataError(f"{meta_path}: not an invlab shard description (format {SHARD_FORMAT!r} expected)")
        try:
            with np.load(index_path, allow_pickle=False) as z:
                shard, offset, nbytes, labels = (np.asarray(z[k]) for k in ("shard", "offset", "size", "label"))
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"{index_path}: unreadable shard index ({err}); rewrite the shards") from None
        n = int(meta.get("num_samples", -1))
        if not (len(shard) == len(offset) == len(nbytes) == len(labels) == n):
            raise DataError(f"{index_path}: {len(shard)} entries but {meta_path} says {n} samples; rewrite the shards")
        for k in range(int(meta["num_shards"])):
            p = root / _shard_name(split, k)
            if not p.is_file():
                raise DataError(f"{p}: shard missing ({meta['num_shards']} expected by {meta_path})")
        return cls(root, split, meta, shard, offset, nbytes, labels, shuffle_block, convert_mode, str(root))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> list[str]:
        return list(self.meta.get("classes") or [])

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    @property
    def channels(self) -> int:
        return int(self.meta["channels"])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.meta["size"][0]), int(self.meta["size"][1])

    def shard_path(self, k: int) -> Path:
        return self.root / _shard_name(self.split, int(k))

    def epoch_order(self, seed: int, epoch: int) -> list[int]:
        """The epoch's order: shards in a drawn order, samples shuffled within consecutive
        blocks of ``shuffle_block`` (a pure function of ``(seed, epoch)``)."""
        n_shards = int(self.meta["num_shards"])
        shard_order = torch.randperm(n_shards, generator=stream_generator("shard-order", seed, epoch)).numpy()
        by_shard = np.argsort(self.shard, kind="stable")
        starts = np.searchsorted(self.shard[by_shard], np.arange(n_shards + 1))
        order = np.concatenate([by_shard[starts[k]:starts[k + 1]] for k in shard_order]) if n_shards else by_shard
        g = stream_generator("shard-block", seed, epoch)
        block = max(1, int(self.shuffle_block))
        for s in range(0, len(order), block):
            chunk = order[s:s + block]
            order[s:s + block] = chunk[torch.randperm(len(chunk), generator=g).numpy()]
        return order.tolist()

    def read(self, indices) -> np.ndarray:
        """Decode samples ``indices`` to uint8 ``(len(indices), C, H, W)``."""
        idx = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(idx), self.channels, *self.size), np.uint8)
        for k in np.unique(self.shard[idx]):
            path = self.shard_path(k)
            try:
                f = open(path, "rb")  # noqa: SIM115 (closed below)
            except OSError as err:
                raise DataError(f"{path}: cannot open shard ({err.strerror})") from None
            with f:
                for pos in np.flatnonzero(self.shard[idx] == k):
                    i = int(idx[pos])
                    f.seek(int(self.offset[i]))
                    data = f.read(int(self.nbytes[i]))
                    if len(data) != int(self.nbytes[i]):
                        raise DataError(f"{path}: truncated shard: sample {i} needs bytes {int(self.offset[i])}.."
                                        f"{int(self.offset[i] + self.nbytes[i])}, the file has {path.stat().st_size}; "
                                        "rewrite the shards")
                    out[pos] = self._decode(data, path, i)
        return out

    def _decode(self, data: bytes, path: Path, i: int) -> np.ndarray:
        where = f"{path} (sample {i:0{_KEY_DIGITS}d})"
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                want = {1: "L", 3: "RGB"}[self.channels]
                if img.mode != want:
                    if not self.convert_mode:
                        raise DataError(f"{where}: image mode {img.mode!r}, the shards are {want}; "
                                        "set data.convert_mode=true to convert")
                    img = img.convert(want)
                h, w = self.size
                if img.size != (w, h):
                    img = img.resize((w, h), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
        except DataError:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise DataError(f"{where}: cannot decode image ({err}); the shard is corrupt, rewrite it") from None
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

    def dataset(self) -> ShardDataset:
        return ShardDataset(self)

    def head(self, n: int) -> ImageArray:
        """The first ``n`` samples decoded (e.g. to measure normalisation statistics)."""
        idx = np.arange(min(n, len(self)))
        return ImageArray(self.read(idx), self.labels[idx], self.classes, self.source)


class ShardDataset(torch.utils.data.Dataset):
    """Batches ``{"image", "label", "index"}`` from :class:`ImageShards` (``__getitems__``)."""

    def __init__(self, shards: ImageShards):
        self.shards = shards

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([i])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        return {
            "image": torch.from_numpy(self.shards.read(idx)),
            "label": torch.from_numpy(np.asarray(self.shards.labels[idx], dtype=np.int64)),
            "index": torch.from_numpy(idx),
        }

