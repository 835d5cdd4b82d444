"""The writer that finishes each epoch's record (its store transaction, its checkpoint files) while
the next epoch trains: a thread of this process, or a process of its own.

    writer = Writer(process=True)                 # a process where the OS allows it, else a thread
    writer.register("last", last_file.finish)     # what jobs may name, with the function they call
    writer.hand("last", meta)                     # staged: last_file.finish(meta)
    writer.send()                                 # the batch runs in the writer, in the order handed
    writer.wait()                                 # the batch sent is done; its error, if any, raised here
    writer.flush()                                # send what is staged and wait for it
    writer.close()                                # flush, then stop

Why a process. A thread of the training process shares its GIL, and a training loop of small
tensors holds the GIL nearly all the time. On a 2-core machine, a thread that did 2 ms of work after
each digits epoch, in one call that releases the GIL (hashing), kept the training thread waiting
for the GIL 0.54-0.62 ms per epoch; twenty shorter calls, 0.20-0.32 ms. The same work done by
another process kept it waiting 0.00 ms (the median epoch's wall time minus its CPU time; bench/README.md
has the figures). So `train_tracked` writes through a process, forked from the training process at
its first batch: it inherits the registered functions and everything they reach (the store, the
checkpoint files' layouts), and the checkpoints' tensors reach it through shared memory (each
file's buffer is a shared anonymous mapping). A batch travels as one pickled message over a pipe;
the reply is empty, or the batch's error.

The process never outlives the training process: it asks the kernel to kill it when its parent
ends (Linux `PR_SET_PDEATHSIG`), so that a killed run stops writing at once, as a thread would.
It ignores Ctrl-C (the training process finishes the batch and closes it), and it ends with
`os._exit`, never returning into the caller's code. Where fork or that request is not available
(Windows, macOS), with `LAB_WRITER=thread`, or for a `Writer()`, the jobs run in a thread instead;
the interface is the same.
A function registered after the process started (a checkpoint laid out again) starts a new one
at the next batch.

A batch stops at its first error, and the writer then takes nothing more: what is staged is
dropped, and every later call raises that error again. What reached the disk and the store is
thus always a prefix of what was handed over, never a record with a gap before it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

_PR_SET_PDEATHSIG = 1
_LENGTH = 8                                 # bytes of a message's length prefix


class WriterGone(RuntimeError):
    """The writer's process ended before it answered (killed, or out of memory)."""


def can_fork() -> bool:
    """Whether a writer process can be forked and tied to its parent's life (Linux)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def wants_process() -> bool:
    """$LAB_WRITER: `process` (the default) or `thread`, which keeps the writer in the training process."""
    choice = os.environ.get("LAB_WRITER", "process").strip().lower() or "process"
    if choice not in ("process", "thread"):
        from core.config import ConfigError

        raise ConfigError(f"LAB_WRITER: {choice!r} is not one of process, thread")
    return choice == "process"


class Writer:
    """Jobs by name, run in order in a thread or a process (see the module's docstring)."""

    def __init__(self, *, process: bool = False) -> None:
        self.process = process and can_fork() and wants_process()
        self._targets: dict[str, Callable] = {}
        self._after_fork: list[Callable[[], None]] = []
        self._jobs: list[tuple[str, tuple]] = []
        self._backend: _InThread | _InProcess | None = None
        self._pending = False
        self._failed: BaseException | None = None
        self._version = 0                                # registrations so far: a process knows those before its fork

    def register(self, key: str, function: Callable, after_fork: Callable[[], None] | None = None) -> None:
        """Let jobs named `key` call `function`; `after_fork` runs first in a new writer process."""
        self._targets[key] = function
        if after_fork is not None:
            self._after_fork.append(after_fork)
        self._version += 1

    def hand(self, key: str, *args) -> None:
        self._raise_failure()
        if key not in self._targets:
            raise KeyError(f"no job {key!r} registered; registered: {', '.join(sorted(self._targets))}")
        self._jobs.append((key, args))

    def send(self) -> None:
        self.wait()
        if not self._jobs:
            return
        jobs, self._jobs = self._jobs, []
        try:
            self._started().submit(jobs)
        except OSError as exc:                           # it could not be forked, or it is gone (its pipe closed)
            self._fail(WriterGone(f"the process writing the run's records is not there: {exc}"))
        except Exception as exc:                         # a batch that cannot be sent (arguments that do not pickle)
            self._fail(exc)
        self._pending = True

    def wait(self) -> None:
        self._raise_failure()
        if self._pending:
            self._pending = False
            error = self._backend.result()
            if error is not None:
                self._fail(error)

    def flush(self) -> None:
        """Send what is staged and wait for it; a batch's error is raised."""
        self.send()
        self.wait()

    def close(self) -> None:
        """Flush, then stop the thread or process; a batch's error is raised."""
        try:
            self.flush()
        finally:
            self._jobs = []
            self._stop()

    def _started(self):
        if self.process and self._backend is not None and self._backend.version != self._version:
            self._stop()                                 # it lacks a later registration: fork again
        if self._backend is None:
            backend = _InProcess if self.process else _InThread
            self._backend = backend(self._targets, self._after_fork, self._version)
        return self._backend

    def _stop(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.stop()

    def _fail(self, error: BaseException) -> None:
        self._failed = error
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failed is not None:
            self._jobs = []
            raise self._failed


def run_jobs(targets: dict[str, Callable], jobs: list[tuple[str, tuple]]) -> BaseException | None:
    """Run `jobs` in order, stopping at the first error, which is returned (None when all ran)."""
    try:
        for key, args in jobs:
            targets[key](*args)
    except BaseException as exc:                         # reported to the caller, who raises it
        return exc
    return None


class _InThread:
    def __init__(self, targets: dict, after_fork: list, version: int) -> None:
        self.targets, self.version = targets, version
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="epoch-writer")
        self.future: Future | None = None

    def submit(self, jobs: list) -> None:
        self.future = self.pool.submit(run_jobs, self.targets, jobs)

    def result(self) -> BaseException | None:
        return self.future.result()

    def stop(self) -> None:
        self.pool.shutdown()


class _InProcess:
    """A forked child running batches sent over one pipe and answering over another."""

    def __init__(self, targets: dict, after_fork: list, version: int) -> None:
        self.version = version
        jobs_out, jobs_in = os.pipe()
        replies_out, replies_in = os.pipe()
        parent = os.getpid()
        self.unfreeze = gc.get_freeze_count() == 0       # undo at the end only a freeze of our own
        gc.freeze()              # no collection in either process touches (and so copies) the pages shared now
        try:
            pid = os.fork()
        except OSError:                                  # out of memory or processes: nothing was started
            for fd in (jobs_out, jobs_in, replies_out, replies_in):
                os.close(fd)
            if self.unfreeze:
                gc.unfreeze()
            raise
        if pid == 0:                                     # the child: serve, then leave without returning
            code = 1
            try:
                os.close(jobs_in)
                os.close(replies_out)
                serve(targets, after_fork, jobs_out, replies_in, parent)
                code = 0
            finally:
                os._exit(code)
        os.close(jobs_out)
        os.close(replies_in)
        self.pid, self.jobs, self.replies = pid, jobs_in, replies_out

    def submit(self, jobs: list) -> None:
        send_message(self.jobs, pickle.dumps(jobs, protocol=pickle.HIGHEST_PROTOCOL))

    def result(self) -> BaseException | None:
        try:
            reply = receive_message(self.replies)
        except OSError as exc:
            reply, gone = None, exc
        else:
            gone = "it closed its pipe"
        if reply is None:
            return WriterGone(f"the process writing the run's records ended before finishing them ({gone})")
        return pickle.loads(reply) if reply else None

    def stop(self) -> None:
        """Close the pipe (the child ends at its end), reap the child, and collect as before the fork
        (unless objects were frozen before it: a worker's training process, forked frozen)."""
        os.close(self.jobs)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:                        # reaped elsewhere already
            pass
        finally:
            os.close(self.replies)
            if self.unfreeze:
                gc.unfreeze()


def serve(targets: dict, after_fork: list, jobs_fd: int, replies_fd: int, parent: int) -> None:
    """The writer process: run each batch that arrives, answer with its error or nothing; end when
    the pipe closes."""
    if not _die_with_parent(parent):
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)         # the training process closes the writer itself
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for hook in after_fork:
        hook()
    while (message := receive_message(jobs_fd)) is not None:
        error = run_jobs(targets, pickle.loads(message))
        send_message(replies_fd, b"" if error is None else dump_error(error))


def _die_with_parent(parent: int) -> bool:
    """Ask for SIGKILL when the parent ends; False when it has ended already."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return os.getppid() == parent


def dump_error(error: BaseException) -> bytes:
    """The error pickled so that it loads in the parent; where it would not, a RuntimeError with
    its type and message."""
    try:
        data = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))


def send_message(fd: int, data: bytes) -> None:
    view = memoryview(len(data).to_bytes(_LENGTH, "little") + data)
    while view:
        view = view[os.write(fd, view):]


def receive_message(fd: int) -> bytes | None:
    """One message, or None at the pipe's end."""
    head = _read_exactly(fd, _LENGTH)
    if head is None:
        return None
    return _read_exactly(fd, int.from_bytes(head, "little"))


def _read_exactly(fd: int, size: int) -> bytes | None:
    parts, left = [], size
    while left:
        part = os.read(fd, left)
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)
