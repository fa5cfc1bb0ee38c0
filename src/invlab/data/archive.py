"""Extract archives (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``) once into the cache."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invlab.data.cache import cache_dir, fingerprint
from invlab.errors import DataError

__all__ = ["is_archive", "extract_once"]

_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tar.xz")


def is_archive(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(_SUFFIXES)


def extract_once(archive: str | os.PathLike) -> Path:
    """Extract ``archive`` into ``<cache>/extracted/<name>-<fingerprint>`` and return that
    folder; later calls return it at once. Members that would land outside the target
    (absolute paths, ``..``, links) are refused.

    Safe across processes (several jobs or DDP ranks on one machine): one extracts while
    the others wait on a lock file beside the target, then use its result; a folder that
    another process may be reading is never replaced."""
    archive = Path(archive).resolve()
    if not archive.is_file():
        raise DataError(f"archive {archive} does not exist")
    st = archive.stat()
    target = cache_dir() / "extracted" / f"{archive.name}-{fingerprint(str(archive), st.st_size, st.st_mtime_ns)}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / f"{target.name}.lock", f"extracting {archive.name}"):
        if (target / ".complete").exists():  # another process extracted it while we waited
            return target
        # Holding the lock, nobody else is extracting: leftovers are from killed processes.
        for stale in target.parent.glob(f"{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():  # only a folder without .complete, which nobody can be using
            shutil.rmtree(target)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        try:
            _extract(archive, tmp)
            (tmp / ".complete").touch()
            os.rename(tmp, target)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"{archive}: cannot extract ({err})") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _extract(archive: Path, into: Path) -> None:
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                _check_member(archive, name)
            zf.extractall(into)
        return
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            _check_member(archive, m.name)
            if m.issym() or m.islnk() or m.isdev():
                raise DataError(f"{archive}: member {m.name} is a link or device; refusing to extract")
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4 / 3.12
            tf.extractall(into, members=members, filter="data")
        else:
            _extract_plainly(tf, members, into)


def _extract_plainly(tf: tarfile.TarFile, members: list[tarfile.TarInfo], into: Path) -> None:
    """Extraction without tarfile's extraction filters (older Pythons): the members were
    checked (no links, devices or paths outside ``into``); only folders and regular
    files' bytes are written, with default permissions (no mode bits, owners or times
    from the archive)."""
    for m in members:
        dest = into / m.name
        if m.isdir():
            dest.mkdir(parents=True, exist_ok=True)
        elif m.isfile():
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tf.extractfile(m) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            raise DataError(f"{tf.name}: member {m.name} is not a file or folder; refusing to extract")


@contextmanager
def _exclusive(lock_path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (released by the OS if the process dies)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print(f"invlab: waiting for another process {what} (lock {lock_path})", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _check_member(archive: Path, name: str) -> None:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts:
        raise DataError(f"{archive}: member {name!r} would extract outside the target; refusing")
