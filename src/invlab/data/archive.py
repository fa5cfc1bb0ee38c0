"""Extract archives (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``) once into the cache."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
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
    (absolute paths, ``..``, links) are refused."""
    archive = Path(archive).resolve()
    if not archive.is_file():
        raise DataError(f"archive {archive} does not exist")
    st = archive.stat()
    target = cache_dir() / "extracted" / f"{archive.name}-{fingerprint(str(archive), st.st_size, st.st_mtime_ns)}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    _check_member(archive, name)
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    _check_member(archive, m.name)
                    if m.issym() or m.islnk() or m.isdev():
                        raise DataError(f"{archive}: member {m.name} is a link or device; refusing to extract")
                tf.extractall(tmp, members=members, filter="data")
        (tmp / ".complete").touch()
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if (target / ".complete").exists():  # another process finished first
            return target
        raise DataError(f"{archive}: cannot extract ({err})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _check_member(archive: Path, name: str) -> None:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts:
        raise DataError(f"{archive}: member {name!r} would extract outside the target; refusing")
