"""Archive extraction into the cache: once, safely across concurrent processes."""

from __future__ import annotations

import multiprocessing as mp
import tarfile
from pathlib import Path

import pytest

from invlab.data.archive import extract_once
from invlab.errors import DataError

FILES = 1500


def _make_tarball(root: Path) -> Path:
    src = root / "src" / "set"
    for i in range(FILES):
        d = src / f"class{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.txt").write_text(str(i))
    archive = root / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="set")
    return archive


def _extract_and_read(archive: str, cache: str, start, returned, out) -> None:
    import os
    import time

    os.environ["INVLAB_CACHE"] = cache
    start.wait()
    target = extract_once(archive)
    with returned.get_lock():
        returned.value += 1
    counts = []
    deadline = time.monotonic() + 60  # a sibling that crashed never reports
    # Keep reading until every process has returned: a folder replaced under a reader
    # (the bug this guards against) loses files or vanishes between reads.
    while True:
        last = returned.value == 4 or time.monotonic() > deadline
        try:
            counts.append(sum(len(files) for _, _, files in os.walk(target / "set")))
        except OSError:
            counts.append(-1)
        if last:
            break
    out.put((str(target), counts))


def test_concurrent_extraction_is_shared_and_never_replaced_under_a_reader(tmp_path):
    archive = _make_tarball(tmp_path)
    ctx = mp.get_context("fork")
    start, returned, out = ctx.Barrier(4), ctx.Value("i", 0), ctx.Queue()
    procs = [ctx.Process(target=_extract_and_read, args=(str(archive), str(tmp_path / "cache"), start, returned, out))
             for _ in range(4)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(120)
    finally:
        for p in procs:
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    results = [out.get(timeout=5) for _ in procs]
    assert len({target for target, _ in results}) == 1
    assert all(set(counts) == {FILES} for _, counts in results)
    extracted = tmp_path / "cache" / "extracted"
    assert not list(extracted.glob("*.tmp-*")), "temporary folders left behind"


def test_leftovers_of_a_killed_extraction_are_cleaned_and_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("INVLAB_CACHE", str(tmp_path / "cache"))
    archive = _make_tarball(tmp_path)
    target = extract_once(archive)
    (target / ".complete").unlink()  # as if killed before it finished
    (target / "set" / "class0" / "0.txt").unlink()
    stale = target.parent / f"{target.name}.tmp-dead"
    stale.mkdir()
    assert extract_once(archive) == target
    assert (target / "set" / "class0" / "0.txt").read_text() == "0"
    assert not stale.exists()


def test_member_escaping_the_target_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("INVLAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "x.txt").write_text("x")
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(tmp_path / "x.txt", arcname="../x.txt")
    with pytest.raises(DataError, match="outside the target"):
        extract_once(archive)
    assert not [p for p in (tmp_path / "cache" / "extracted").glob("evil.tar-*") if p.is_dir()]


@pytest.mark.parametrize("filters", [True, False], ids=["data-filter", "older-python"])
def test_extraction_with_and_without_tarfile_filters(filters, tmp_path, monkeypatch):
    """``extractall(filter="data")`` exists from Python 3.10.12 / 3.11.4; on older ones the
    fallback writes only folders and file bytes: no setuid bits, no links, same content."""
    import io
    import stat

    monkeypatch.setenv("INVLAB_CACHE", str(tmp_path / "cache"))
    if not filters:  # as on Python 3.10.11: no data_filter, and extractall takes no filter
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
        plain = tarfile.TarFile.extractall

        def extractall(self, path=".", members=None, *, numeric_owner=False, **kw):
            if kw:
                raise TypeError(f"extractall() got an unexpected keyword argument {next(iter(kw))!r}")
            return plain(self, path, members, numeric_owner=numeric_owner)

        monkeypatch.setattr(tarfile.TarFile, "extractall", extractall)
    archive = tmp_path / "set.tar"
    with tarfile.open(archive, "w") as tf:
        for name, data, mode in (("set/a/1.txt", b"one", 0o4755), ("set/b/2.txt", b"two", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    target = extract_once(archive)
    assert (target / "set" / "a" / "1.txt").read_bytes() == b"one" and (target / "set" / "b" / "2.txt").read_text() == "two"
    assert not (target / "set" / "a" / "1.txt").stat().st_mode & stat.S_ISUID
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tf:
        info = tarfile.TarInfo("set/l")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="link or device"):
        extract_once(link)
