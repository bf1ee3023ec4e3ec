"""Atomic file and folder writes: a reader sees the old version or the new one, never half a file.

Everything is written under a temporary name in the destination's own folder (a rename is only
atomic within one file system), flushed to disk with fsync, renamed into place, and then the
folder itself is fsynced so the rename survives a crash. Files get mode 0644 and folders 0755,
not the owner-only modes of ``tempfile``, because results and checkpoints are shared.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644
DIR_MODE = 0o755

PathLike = str | os.PathLike[str]


def _fsync_path(path: PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: PathLike) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where folders cannot be opened."""
    if os.name == "posix":
        _fsync_path(folder)


def atomic_write_bytes(path: PathLike, data: bytes, *, mode: int = FILE_MODE) -> Path:
    """Write ``data`` to ``path`` atomically and durably (parent folders are created); return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)
    return out


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8", mode: int = FILE_MODE) -> Path:
    """``atomic_write_bytes`` for text (UTF-8 by default, newlines written as given)."""
    return atomic_write_bytes(path, text.encode(encoding), mode=mode)


def _fsync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (bottom-up), so a rename publishes durable content."""
    for root, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                _fsync_path(p)
        fsync_dir(root)


def publish_dir(staging: PathLike, target: PathLike, *, keep_existing: bool = False) -> Path:
    """Move the finished folder ``staging`` to ``target`` (same parent folder) after flushing it to disk.

    An existing ``target`` is replaced (renamed aside, then deleted), or with ``keep_existing`` kept
    while ``staging`` is deleted (another process finished the same work first). Returns ``target``.
    """
    staging, target = Path(staging), Path(target)
    if staging.parent.resolve() != target.parent.resolve():
        raise ValueError(f"{staging} and {target} must share a folder for an atomic rename")
    if keep_existing and target.exists():
        shutil.rmtree(staging)
        return target
    staging.chmod(DIR_MODE)
    _fsync_tree(staging)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        target.rename(old / target.name)
    try:
        staging.rename(target)
    except BaseException:
        if old is not None:  # put the previous version back
            (old / target.name).rename(target)
            old.rmdir()
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


@contextmanager
def atomic_dir(target: PathLike, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block ends normally it becomes ``target``.

    If the block raises, the temporary folder is deleted and ``target`` is left as it was. See
    ``publish_dir`` for ``keep_existing``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
        publish_dir(staging, target, keep_existing=keep_existing)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
