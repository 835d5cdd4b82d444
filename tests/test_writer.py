"""The writer that finishes each epoch's record while the next epoch trains: a thread, or a process
forked from the training process (core.writer). Every test that can runs against both."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from core.epochfile import shared_buffer
from core.writer import Writer, WriterGone, can_fork
from tests.conftest import REPO
from tests.test_worker import alive

BACKENDS = [pytest.param(False, id="thread"),
            pytest.param(True, id="process", marks=pytest.mark.skipif(not can_fork(), reason="needs Linux"))]


def note(path: str, text: str) -> None:
    """A job whose effect crosses processes: one line appended to a file, with who wrote it."""
    with open(path, "a") as handle:
        handle.write(f"{text} {os.getpid()} {threading.get_ident()}\n")


def notes(path) -> list[tuple[str, int, int]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(text, int(pid), int(ident)) for text, pid, ident in (line.split() for line in lines)]


def full(*_):
    raise OSError(28, "No space left on device")


@pytest.fixture
def writer(request):
    made = Writer(process=request.param)
    made.register("note", note)
    made.register("full", full)
    yield made
    try:
        made.close()
    except Exception:
        pass


@pytest.mark.parametrize("writer", BACKENDS, indirect=True)
def test_a_batch_runs_in_order_elsewhere_and_its_error_is_raised_on_wait(writer, tmp_path):
    log = str(tmp_path / "log")
    writer.hand("note", log, "best")
    writer.hand("note", log, "last")
    writer.send()
    writer.wait()
    seen = notes(tmp_path / "log")
    assert [text for text, _, _ in seen] == ["best", "last"] and len({(p, i) for _, p, i in seen}) == 1
    assert (seen[0][1], seen[0][2]) != (os.getpid(), threading.get_ident())     # not in the caller's thread
    assert (seen[0][1] != os.getpid()) is writer.process
    writer.hand("full")
    writer.hand("note", log, "after")
    writer.send()
    with pytest.raises(OSError, match="No space left") as raised:
        writer.wait()
    assert raised.value.errno == 28                                # the error itself, from either side
    assert [text for text, _, _ in notes(tmp_path / "log")] == ["best", "last"]     # the batch stopped there
    for call in (lambda: writer.hand("note", log, "later"), writer.send, writer.wait, writer.close):
        with pytest.raises(OSError, match="No space left"):        # nothing more is taken: no record after a gap
            call()
    assert len(notes(tmp_path / "log")) == 2


@pytest.mark.parametrize("writer", BACKENDS, indirect=True)
def test_what_is_staged_is_sent_when_the_writer_closes(writer, tmp_path):
    log = str(tmp_path / "log")
    writer.hand("note", log, "first")
    writer.send()
    writer.hand("note", log, "staged")
    writer.close()
    assert [text for text, _, _ in notes(tmp_path / "log")] == ["first", "staged"]
    with pytest.raises(KeyError, match="registered: full, note"):
        writer.hand("unknown")


def test_a_writer_process_sees_a_shared_buffer_and_forks_again_for_a_later_registration(tmp_path):
    if not can_fork():
        pytest.skip("a writer process needs Linux")
    writer, buffer, log = Writer(process=True), shared_buffer(4), str(tmp_path / "log")
    writer.register("note", note)
    writer.register("buffer", lambda: note(log, bytes(buffer.numpy()).hex()))
    for value in (1, 2):
        buffer.fill_(value)                                         # written after the fork, seen by the child
        writer.hand("buffer")
        writer.send()
        writer.wait()
    writer.register("late", lambda: note(log, "late"))
    writer.hand("late")
    writer.close()
    seen = notes(tmp_path / "log")
    assert [text for text, _, _ in seen] == ["01010101", "02020202", "late"]
    assert seen[0][1] == seen[1][1] != seen[2][1] and os.getpid() not in {pid for _, pid, _ in seen}


def test_an_error_that_cannot_be_pickled_arrives_as_a_runtime_error_with_its_type(tmp_path):
    if not can_fork():
        pytest.skip("a writer process needs Linux")

    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a} and {b}")

    def odd():
        raise Odd(1, 2)
    writer = Writer(process=True)
    writer.register("odd", odd)
    writer.hand("odd")
    with pytest.raises(RuntimeError, match="Odd: 1 and 2"):
        writer.close()


def test_a_killed_writer_process_fails_the_next_wait_and_every_call_after(tmp_path):
    if not can_fork():
        pytest.skip("a writer process needs Linux")
    writer = Writer(process=True)
    writer.register("sleep", time.sleep)
    writer.hand("sleep", 30)
    writer.send()
    os.kill(writer._backend.pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(WriterGone, match="ended before finishing"):
        writer.wait()
    assert time.monotonic() - started < 10
    with pytest.raises(WriterGone):
        writer.hand("sleep", 0)
    with pytest.raises(WriterGone):
        writer.close()


def test_the_writer_process_ignores_ctrl_c_and_finishes_its_batch(tmp_path):
    if not can_fork():
        pytest.skip("a writer process needs Linux")
    writer, log = Writer(process=True), str(tmp_path / "log")
    writer.register("sleep", time.sleep)
    writer.register("note", note)
    writer.hand("sleep", 0.3)
    writer.hand("note", log, "done")
    writer.send()
    time.sleep(0.1)
    os.kill(writer._backend.pid, signal.SIGINT)             # a terminal's Ctrl-C reaches the whole group
    writer.close()
    assert [text for text, _, _ in notes(tmp_path / "log")] == ["done"]


def test_the_writer_process_dies_with_its_training_process(tmp_path):
    if not can_fork():
        pytest.skip("a writer process needs Linux")
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from core.writer import Writer
        writer = Writer(process=True)
        writer.register("sleep", time.sleep)
        writer.hand("sleep", 60)
        writer.send()
        print(writer._backend.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(child)
    finally:
        parent.kill()
        parent.wait()


def test_lab_writer_thread_keeps_the_writer_in_the_process_and_other_values_are_refused(monkeypatch):
    from core.config import ConfigError

    monkeypatch.setenv("LAB_WRITER", "thread")
    assert Writer(process=True).process is False
    monkeypatch.setenv("LAB_WRITER", " Process ")
    assert Writer(process=True).process is can_fork()
    monkeypatch.setenv("LAB_WRITER", "fork")
    with pytest.raises(ConfigError, match="LAB_WRITER: 'fork' is not one of process, thread"):
        Writer(process=True)


def test_a_writer_process_freezes_the_collector_for_its_run_and_leaves_an_earlier_freeze_alone():
    """Objects alive at the fork are frozen, so that no collection copies the pages both processes
    share; the writer unfreezes them when it stops, unless they were frozen before it started."""
    import gc

    if not can_fork():
        pytest.skip("a writer process needs Linux")
    gc.unfreeze()                                               # whatever an earlier test left frozen
    for frozen_before in (False, True):
        if frozen_before:
            gc.freeze()
        try:
            writer = Writer(process=True)
            writer.register("noop", lambda: None)
            writer.hand("noop")
            writer.send()
            assert gc.get_freeze_count() > 0
            writer.close()
            assert (gc.get_freeze_count() > 0) is frozen_before
        finally:
            gc.unfreeze()


def test_a_writer_process_that_cannot_be_forked_fails_the_writer_with_one_message(monkeypatch):
    import gc

    if not can_fork():
        pytest.skip("a writer process needs Linux")

    def no_memory():
        raise OSError(12, "Cannot allocate memory")
    gc.unfreeze()
    writer = Writer(process=True)
    writer.register("noop", lambda: None)
    monkeypatch.setattr(os, "fork", no_memory)
    writer.hand("noop")
    with pytest.raises(WriterGone, match="is not there: .*Cannot allocate memory"):
        writer.send()
    assert gc.get_freeze_count() == 0                               # the freeze for the fork undone
    with pytest.raises(WriterGone):
        writer.close()


def test_a_batch_that_cannot_be_sent_to_the_process_stops_the_writer_too(tmp_path):
    if not can_fork():
        pytest.skip("a writer process needs Linux")
    writer, log = Writer(process=True), str(tmp_path / "log")
    writer.register("note", note)
    writer.hand("note", log, lambda: None)                       # a function does not pickle
    with pytest.raises(Exception, match="pickle"):
        writer.send()
    with pytest.raises(Exception, match="pickle"):               # nothing later is taken: no gap
        writer.hand("note", log, "later")
    with pytest.raises(Exception, match="pickle"):
        writer.close()
    assert not (tmp_path / "log").exists()
