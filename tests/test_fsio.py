"""Atomic writes: content, modes, and what is left behind when a write fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from srm_agent.fsio import atomic_dir, atomic_write_bytes, atomic_write_text, publish_dir


@pytest.fixture
def strict_umask():
    """A umask that would make plain writes owner-only: the helpers must still give 0644 / 0755."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_text_and_bytes_land_whole_with_mode_0644(tmp_path, strict_umask):
    out = atomic_write_text(tmp_path / "a" / "b" / "t.txt", "héllo\nwörld\n")
    assert out == tmp_path / "a" / "b" / "t.txt"
    assert out.read_bytes() == "héllo\nwörld\n".encode("utf-8")
    assert _mode(out) == 0o644
    atomic_write_bytes(out, b"\x00\xff")
    assert out.read_bytes() == b"\x00\xff" and _mode(out) == 0o644
    assert os.listdir(out.parent) == ["t.txt"]
    assert _mode(atomic_write_text(tmp_path / "private", "x", mode=0o600)) == 0o600


def test_every_write_is_flushed_and_the_folder_too(tmp_path, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(stat.filemode(os.fstat(fd).st_mode)[0])
        real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    atomic_write_text(tmp_path / "t.txt", "x")
    assert synced == ["-", "d"]  # the file's data, then the folder entry of the rename


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch, failing):
    out = atomic_write_text(tmp_path / "t.txt", "old")

    def boom(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(out, "new")
    assert os.listdir(tmp_path) == ["t.txt"] and out.read_text() == "old"


def test_unencodable_text_raises_before_touching_anything(tmp_path):
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(tmp_path / "t.txt", "\ud800")
    assert os.listdir(tmp_path) == []


def test_a_folder_appears_whole_with_mode_0755_and_replaces_the_old_one(tmp_path, strict_umask):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as folder:
        assert folder.parent == tmp_path and folder.name.startswith(".ckpt.")
        (folder / "w.bin").write_bytes(b"1")
        assert not target.exists()
    assert (target / "w.bin").read_bytes() == b"1" and _mode(target) == 0o755
    with atomic_dir(target) as folder:
        (folder / "v.bin").write_bytes(b"2")
    assert sorted(os.listdir(target)) == ["v.bin"]
    assert os.listdir(tmp_path) == ["ckpt"]


def test_a_failed_folder_write_leaves_the_old_folder_and_no_temp_folder(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as folder:
        (folder / "w.bin").write_bytes(b"1")
    with pytest.raises(RuntimeError, match="crashed"):
        with atomic_dir(target) as folder:
            (folder / "w.bin").write_bytes(b"half")
            raise RuntimeError("crashed")
    assert os.listdir(tmp_path) == ["ckpt"] and (target / "w.bin").read_bytes() == b"1"


def test_keep_existing_drops_the_late_copy(tmp_path):
    target = tmp_path / "converted"
    with atomic_dir(target) as folder:
        (folder / "w.bin").write_bytes(b"first")
    with atomic_dir(target, keep_existing=True) as folder:
        (folder / "w.bin").write_bytes(b"second")
    assert (target / "w.bin").read_bytes() == b"first" and os.listdir(tmp_path) == ["converted"]


def test_a_failed_rename_puts_the_previous_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as folder:
        (folder / "w.bin").write_bytes(b"1")
    staging = tmp_path / ".ckpt.staging"
    staging.mkdir()
    real = Path.rename

    def rename(self: Path, dest):
        if self == staging:
            raise OSError("rename failed")
        return real(self, dest)
    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        publish_dir(staging, target)
    assert (target / "w.bin").read_bytes() == b"1"
    assert sorted(os.listdir(tmp_path)) == [".ckpt.staging", "ckpt"]


def test_publish_needs_one_parent_folder(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="share a folder"):
        publish_dir(tmp_path / "a", tmp_path / "b" / "c")
