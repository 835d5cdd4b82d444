"""Crash-safe file writes: the fsynced rename, the per-epoch write in turn, leftovers."""

import os
import random
import signal
import time

import pytest

from core import savefile
from core.savefile import atomic_write, clean_leftovers, exchange, write_in_turn

needs_exchange = pytest.mark.skipif(savefile._RENAMEAT2 is None, reason="no renameat2 in this C library")


def spares(folder):
    return sorted(p.name for p in folder.glob(".*.spare.tmp"))


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("core.savefile.os.replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


@needs_exchange
def test_writes_in_turn_reuse_two_files_and_keep_the_previous_version_as_the_spare(tmp_path):
    target = tmp_path / "sub" / "last.safetensors"               # the folder is created on first use
    inodes = []
    for i, data in enumerate([b"a" * 5000, b"b" * 300, b"c" * 7000, b"d" * 10]):
        write_in_turn(target, data)
        assert target.read_bytes() == data
        inodes.append(target.stat().st_ino)
        if i:                                                    # the previous version, whole
            (spare,) = spares(target.parent)
            assert (target.parent / spare).read_bytes() == [b"a" * 5000, b"b" * 300, b"c" * 7000][i - 1]
    assert inodes[2] == inodes[0] and inodes[3] == inodes[1] and inodes[0] != inodes[1]


def test_without_an_exchange_it_falls_back_to_a_rename(tmp_path, monkeypatch):
    monkeypatch.setattr(savefile, "_RENAMEAT2", None)
    target = tmp_path / "last.safetensors"
    for data in (b"one", b"two"):
        write_in_turn(target, data)
        assert target.read_bytes() == data and spares(tmp_path) == []


def test_a_failed_write_in_turn_leaves_the_file_and_no_spare(tmp_path, monkeypatch):
    target = tmp_path / "last.safetensors"
    write_in_turn(target, b"good" * 100)
    write_in_turn(target, b"better" * 100)

    def half_write(fd, views, offset):
        os.write(fd, bytes(views[0][:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("core.savefile.os.pwritev", half_write)
    with pytest.raises(OSError, match="No space left"):
        write_in_turn(target, b"x" * 1000)
    assert target.read_bytes() == b"better" * 100 and spares(tmp_path) == []


@needs_exchange
def test_exchange_needs_both_files_and_changes_nothing_otherwise(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"A")
    assert exchange(first, second) is False and first.read_bytes() == b"A" and not second.exists()
    second.write_bytes(b"B")
    assert exchange(first, second) is True and (first.read_bytes(), second.read_bytes()) == (b"B", b"A")


@pytest.mark.slow
def test_a_writer_killed_at_random_moments_always_leaves_a_whole_version(tmp_path):
    target = tmp_path / "last.safetensors"
    versions = {bytes([65 + k]) * (200_000 + 50_000 * k) for k in range(4)}   # different lengths
    write_in_turn(target, bytes([65]) * 200_000)
    rng = random.Random(0)
    for kill in range(20):
        pid = os.fork()
        if pid == 0:                                             # the writer: rewrite until killed
            try:
                for i in range(10**9):
                    write_in_turn(target, bytes([65 + i % 4]) * (200_000 + 50_000 * (i % 4)))
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert target.read_bytes() in versions, f"kill {kill} left a torn file"
    assert clean_leftovers(tmp_path) <= 20 and spares(tmp_path) == []


def test_without_pwritev_the_spare_is_written_from_its_start(tmp_path, monkeypatch):
    monkeypatch.delattr("core.savefile.os.pwritev")            # as on Windows
    target = tmp_path / "last.safetensors"
    for parts in ((b"long version " * 50,), (b"sh", b"ort"), (b"x" * 2000, b"", b"y")):
        write_in_turn(target, *parts)
        assert target.read_bytes() == b"".join(parts)


def test_parts_are_written_whole_and_in_order_when_the_os_takes_less_each_time(tmp_path, monkeypatch):
    real = os.pwritev
    taken = []

    def short_write(fd, views, offset):                        # at most 7 bytes of the first view each call
        taken.append(offset)
        return real(fd, [bytes(views[0][:7])], offset)

    monkeypatch.setattr("core.savefile.os.pwritev", short_write)
    target = tmp_path / "last.safetensors"
    write_in_turn(target, b"x" * 3000)                          # an older, longer version
    parts = (b"header-", bytearray(b"0123456789" * 3), memoryview(b"tail"), b"")
    write_in_turn(target, *parts)
    assert target.read_bytes() == b"header-" + b"0123456789" * 3 + b"tail"
    assert taken[-1] > 0 and len(taken) > 3
