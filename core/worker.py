"""Training jobs for the dashboard: queued runs in the store, trained by a warm worker process.

    run_id = submit(config)            # validates, then records a queued run (the page calls this)
    python -m core worker              # the supervisor: claims queued runs, trains each in a child

The supervisor imports torch and the training code once, loads the default dataset, and then forks
one child per claimed run, so a run starts training within a fraction of a second instead of paying
the 4-7 s a new Python process spends importing torch. Each child is its own process: killing it
loses only the epoch in progress, and the supervisor marks its run `crashed` when it exits without
finishing it. At most `slots` children train at once; further runs wait as `queued`.
The supervisor ends when the process that started it does, or on SIGTERM (`stop_workers()`), and
stops its children as it goes, marking their runs `crashed` (they can be resumed). Idle, it looks
for queued runs ten times a second, but on SQLite it runs the claim's transaction only when another
connection has committed since its last look (`StoreWatch`), or once a second.

Live controls (stop, pause, resume, lr/momentum/weight decay/grad clip) travel through the store:
`StoreControl` reads them between steps and writes the run's progress and heartbeat.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import multiprocessing
import os
import signal
import time
from pathlib import Path

from core.config import TrainConfig
from core.control import TrainControl
from core.status import RunStatus
from core.tracker import Store

POLL_S = 0.1                 # how often the supervisor looks for queued runs
CONTROL_INTERVAL_S = 0.25    # how often a training child reads controls and writes progress
HEARTBEAT_TIMEOUT_S = 30.0   # a running run silent this long is marked crashed
STALE_CHECK_S = 5.0          # how often the supervisor looks for such runs
FORCE_CLAIM_S = 1.0          # an idle supervisor tries to claim at least this often, changes or not
RESPAWN_S = 5.0              # the app starts a supervisor again at most this often
_threads = {"train": 0}      # torch threads children train with (set by warm_up)


class StoreControl(TrainControl):
    """A TrainControl fed by the store's control rows; writes progress as the heartbeat."""

    def __init__(self, store: Store, run_id: str, interval_s: float = CONTROL_INTERVAL_S) -> None:
        from core.demo import demo_limits

        super().__init__()
        self.store, self.run_id, self.interval_s = store, run_id, interval_s
        self._last = 0.0
        self.limits, self.started_at = demo_limits(), time.monotonic()
        # a resumed run carries the time its earlier epochs took, so stopping and resuming cannot
        # stretch a demo run past its wall-time cap
        self.earlier_s = sum(row["value"] for row in store.metric_rows(run_id, ["seconds"])) if self.limits else 0.0

    def poll(self) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        for command, data in self.store.take_controls(self.run_id):
            self.apply(command, data)
        if self.limits is not None and self.earlier_s + now - self.started_at > self.limits.max_seconds:
            self.stop(f"the demo's limit of {self.limits.max_seconds} s per run was reached")
        self.store.set_progress(self.run_id, {**self.position, "paused": self.paused, "pid": os.getpid()})

    def apply(self, command: str, data: dict) -> None:
        step, epoch = self.position.get("step"), self.position.get("epoch")
        if command == "stop":
            self.stop(data.get("reason") or "stopped from the dashboard")
        elif command in ("pause", "resume"):
            self.pause() if command == "pause" else self.resume()
            self.store.log_event(self.run_id, command, {}, step=step, epoch=epoch)
        elif command == "set":
            try:
                self.set(**data)
            except ValueError as exc:
                self.store.log_event(self.run_id, "rejected", {"change": data, "error": str(exc)}, step=step,
                                     epoch=epoch)


def submit(config: TrainConfig, *, store: Store | None = None, name: str | None = None,
           project: str = "default", source: str = "app") -> str:
    """Check `config` against its dataset, then record it as a queued run; returns the run id."""
    from core.demo import check_demo, demo_limits
    from core.models import planned_parameters
    from core.runs import environment, prepare_data

    limits = demo_limits()
    check_demo(config, limits)               # in a hosted demo, before any file is read
    data = prepare_data(config)              # raises a user error before any run exists
    if limits is not None:
        check_demo(config, limits, planned_parameters(config, data.info))   # nothing allocated
    store = store or Store()
    return store.create_run(config.to_dict(), name=name, project=project, source=source, environment=environment(),
                            status=RunStatus.QUEUED)


@contextlib.contextmanager
def sigterm_held():
    """Hold SIGTERM back while a child is forked: the child starts with the supervisor's handler, and a
    SIGTERM it received before `default_sigterm` would run that copy and be lost. Held, it waits."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def default_sigterm() -> None:
    """In a training child: SIGTERM ends it (the default), including one held since its fork."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def run_job(run_id: str, threads: int | None = None) -> None:
    """Train one claimed run to its end (in a child process) with `threads` torch threads."""
    from core.errors import USER_ERRORS
    from core.runs import prepare_data, train_tracked

    import torch

    default_sigterm()
    torch.set_num_threads(threads or _threads["train"] or torch.get_num_threads())
    store = Store()
    store.set_progress(run_id, {"pid": os.getpid()})   # at once: a resumed run's progress names its old, dead pid
    try:
        config = TrainConfig.from_dict(store.get_run(run_id).config)
        data = prepare_data(config)
    except USER_ERRORS as exc:
        store.finish_run(run_id, RunStatus.FAILED, str(exc))
        return
    from core.resume import has_last

    resume = has_last(store.run_folder(run_id))        # a queued run with a last checkpoint is a resume
    for _ in train_tracked(config, store, run_id, control=StoreControl(store, run_id), data=data, resume=resume):
        pass


def warm_up() -> None:
    """Import what training needs and load the default dataset, without starting compute threads
    (the children are forked from this process, and OpenMP thread pools do not survive a fork)."""
    import torch

    _threads["train"] = torch.get_num_threads()
    torch.set_num_threads(1)
    from core.datasets import load_dataset
    import core.runs  # noqa: F401  (imports the training stack)

    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True)   # imports torch._dynamo
    load_dataset(TrainConfig())
    gc.collect()
    gc.freeze()       # children never scan (or copy, by touching refcounts) the objects imported here


class StoreWatch:
    """Whether the store may have changed since the last look, for an idle supervisor: SQLite's
    `PRAGMA data_version`, read on a connection of its own, changes when any other connection commits
    (a page queueing a run). A look costs microseconds where a claim's transaction costs about 0.5 ms
    of CPU, ten times a second. Other databases, and every `FORCE_CLAIM_S`, always say yes."""

    def __init__(self, url: str) -> None:
        import sqlite3

        path = url.removeprefix("sqlite:///")
        self.connection = sqlite3.connect(path, check_same_thread=False) if url.startswith("sqlite:///") else None
        self.version, self.said_yes = None, 0.0

    def may_have_changed(self) -> bool:
        now = time.monotonic()
        version = self.connection.execute("PRAGMA data_version").fetchone()[0] if self.connection else None
        if version is None or version != self.version or now - self.said_yes >= FORCE_CLAIM_S:
            self.version, self.said_yes = version, now
            return True
        return False


class Supervisor:
    """Claims queued runs and trains each in a forked child, at most `slots` at a time."""

    def __init__(self, slots: int = 2, parent_pid: int | None = None) -> None:
        self.slots, self.parent_pid = slots, parent_pid
        self.store = Store()
        self.watch = StoreWatch(self.store.url)
        self.children: dict[str, multiprocessing.Process] = {}
        self.context = multiprocessing.get_context("fork")
        self.stopping = False

    def request_stop(self, *_signal) -> None:
        """End `serve` at its next turn (it is the SIGTERM handler): the children are stopped too."""
        self.stopping = True

    def reap(self) -> None:
        for run_id, child in list(self.children.items()):
            if child.is_alive():
                continue
            child.join()
            del self.children[run_id]
            if child.exitcode != 0:
                self.store.finish_run(run_id, RunStatus.CRASHED,
                                      f"the training process exited with code {child.exitcode}")

    def start_next(self) -> bool:
        if len(self.children) >= self.slots or not self.watch.may_have_changed():
            return False
        run_id = self.store.claim_queued()
        if run_id is None:
            return False
        child = self.context.Process(target=run_job, args=(run_id, self.threads_per_job()),
                                     name=f"train-{run_id}", daemon=True)
        with sigterm_held():
            child.start()
        self.children[run_id] = child
        return True

    def threads_per_job(self) -> int:
        """Cores shared out among the slots, so that jobs x threads never exceeds the cores."""
        cores = _threads["train"] or os.cpu_count() or 1
        return max(1, cores // self.slots)

    def parent_alive(self) -> bool:
        return self.parent_pid is None or os.getppid() == self.parent_pid

    def serve(self) -> None:
        from core.savefile import clean_store_leftovers

        clean_store_leftovers(self.store.home)        # blobs half-written by a process killed earlier
        last_check = 0.0
        while self.parent_alive() and not self.stopping:
            if time.monotonic() - last_check > STALE_CHECK_S:
                self.store.mark_stale_as_crashed(HEARTBEAT_TIMEOUT_S)   # runs of processes that died
                last_check = time.monotonic()
            self.reap()
            if not self.start_next():
                time.sleep(POLL_S)
        for child in self.children.values():
            child.terminate()
        for child in self.children.values():
            child.join(timeout=5)
        self.reap()                                   # their runs: crashed, resumable


class WorkerProcess:
    """The app's handle on its supervisor process: started on first use, restarted if it died."""

    def __init__(self, slots: int = 2) -> None:
        self.slots = slots
        self.process = None
        self._last_start = 0.0

    def ensure_running(self) -> None:
        import subprocess
        import sys

        if self.process is not None and self.process.poll() is None:
            return
        if time.monotonic() - self._last_start < RESPAWN_S and self.process is not None:
            return
        self._last_start = time.monotonic()
        log = Store().home / "worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "core", "worker", "--slots", str(self.slots), "--parent-pid",
                 str(os.getpid())], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=Path(__file__).resolve().parents[1], env=worker_environment())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def job_slots() -> int:
    """Runs trained at once: $LAB_MAX_JOBS (default 2), capped by the demo's limit."""
    from core.demo import demo_limits

    slots = max(1, int(os.environ.get("LAB_MAX_JOBS", "2")))
    limits = demo_limits()
    return min(slots, limits.max_jobs) if limits else slots


_workers: dict[tuple[str, int], WorkerProcess] = {}     # this process' supervisors, by store URL and slots


def ensure_worker(slots: int | None = None) -> WorkerProcess:
    """Start (or restart) this process' supervisor for the current store; pages call it on load so
    that the worker is warm by the time someone clicks Start."""
    from core.tracker import default_url

    key = (default_url(), slots or job_slots())
    worker = _workers.setdefault(key, WorkerProcess(key[1]))
    worker.ensure_running()
    return worker


def stop_workers() -> int:
    """Stop every supervisor this process started (their training children with them); how many
    were running. A supervisor also stops by itself when the process that started it exits."""
    running = [w for w in _workers.values() if w.process is not None and w.process.poll() is None]
    for worker in running:
        worker.stop()
    _workers.clear()
    return len(running)


def worker_environment() -> dict:
    """The supervisor's environment: idle OpenMP threads sleep instead of spinning, so that training
    does not fight the app server (and other runs) for the cores."""
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def hold_lock(path: Path):
    """An exclusive lock file so that one supervisor serves a lab folder; None when already held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def main(slots: int, parent_pid: int | None) -> int:
    lock = hold_lock(Store().home / "worker.lock")
    if lock is None:
        return 0                             # another supervisor already serves this lab
    warm_up()
    supervisor = Supervisor(slots, parent_pid)
    signal.signal(signal.SIGTERM, supervisor.request_stop)      # children put the default back
    supervisor.serve()
    return 0
