"""Fault injection: training processes killed with SIGKILL at random moments, and a full disk.

Runs train in the real worker (a supervisor that forks one process per run, which forks its writer).
Half the kills hit the training process alone at a random moment (its writer dies with it); the
other half hit the training process and its writer while the writer writes a checkpoint. Each
kill must leave: an intact SQLite store, the metrics of every completed epoch, loadable
checkpoints, and a run that resumes as the same run.
"""

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from core.checkpoint import load_model, read_checkpoint
from core.config import TrainConfig
from core.errors import CheckpointError
from core.resume import has_last, read_last
from core.runs import queue_resume
from core.status import RunStatus
from core.tracker import Store
from core.worker import submit
from tests.conftest import REPO

KILLS = 20


def wait(check, seconds=60.0, every=0.01):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def training_pid(store, run_id, not_pid):
    run = store.get_run(run_id)
    pid = (run.progress or {}).get("pid")
    return pid if run.status is RunStatus.RUNNING and pid and pid != not_pid else None


def kill_during_write(folder: Path, pid: int) -> bool:
    """SIGKILL the training process and its writer (the process that writes its files, `core.writer`)
    the moment the writer starts writing the resumable checkpoint (or after 5 s), as a kill of the
    whole app would; True if the kill landed in a write. The writer writes into the training
    process's spare file (`.last.safetensors.<pid>.spare.tmp`) and then exchanges it with
    `last.safetensors`: the spare's contents changing under the same inode mark a write in progress;
    a new inode under that name marks a finished exchange."""
    spare = folder / f".last.safetensors.{pid}.spare.tmp"
    seen, deadline = None, time.time() + 5
    while time.time() < deadline:
        try:
            stat = spare.stat()
        except FileNotFoundError:
            continue
        now = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen is not None and now[0] == seen[0] and now != seen:
            kill_with_writer(pid)
            return True
        seen = now
    kill_with_writer(pid)
    return False


def kill_with_writer(pid: int) -> None:
    """SIGKILL the writer processes of `pid` (its children), then `pid`."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in map(int, children):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.kill(pid, signal.SIGKILL)


def torn_spare(folder: Path, pid: int) -> bool:
    """Whether the killed process's spare holds a checkpoint that does not verify (a write cut short)."""
    spare = folder / f".last.safetensors.{pid}.spare.tmp"
    if not spare.is_file():
        return False
    with tempfile.TemporaryDirectory() as copy:
        shutil.copyfile(spare, Path(copy) / "last.safetensors")
        try:
            read_last(Path(copy))
        except CheckpointError:
            return True
    return False


def check_after_kill(lab_home: Path, store: Store, run_id: str) -> int:
    with sqlite3.connect(lab_home / "lab.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    folder = store.run_folder(run_id)
    completed = read_checkpoint(folder, "last")[1]["epoch"] if has_last(folder) else 0   # whole, no fallback
    if completed:
        load_model(folder)                                   # the best checkpoint loads too
    epochs = store.metrics_frame(run_id)["epoch"].tolist()
    assert epochs[:completed] == list(range(1, completed + 1))   # every completed epoch is recorded
    return completed


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_at_most_the_epoch_in_progress(lab_home):
    supervisor = subprocess.Popen([sys.executable, "-m", "core", "worker", "--slots", "1"], cwd=REPO,
                                  env={**os.environ, "LAB_HOME": str(lab_home)})
    store = Store()
    rng = random.Random(0)
    try:
        run_id = submit(TrainConfig(dataset="digits", hidden=(512, 512), epochs=400, batch_size=128))
        folder, last_pid, during_write, torn, progress = store.run_folder(run_id), None, 0, 0, []
        for kill in range(KILLS):
            pid = wait(lambda: training_pid(store, run_id, last_pid))
            if kill % 2:
                during_write += kill_during_write(folder, pid)
                wait(lambda: store.get_run(run_id).status is RunStatus.CRASHED)
                torn += torn_spare(folder, pid)
            else:
                time.sleep(rng.uniform(0.2, 2.5))
                os.kill(pid, signal.SIGKILL)
            last_pid = pid
            wait(lambda: store.get_run(run_id).status is RunStatus.CRASHED)
            progress.append(check_after_kill(lab_home, store, run_id))
            queue_resume(store, run_id)
        store.send_control(run_id, "stop")
        wait(lambda: store.get_run(run_id).status is RunStatus.STOPPED, seconds=120)
    finally:
        supervisor.kill()
        supervisor.wait()
    assert progress[-1] >= 5 and during_write >= 5 and torn >= 5, (progress, during_write, torn)
    assert not list(folder.glob(".*.tmp"))
    epochs = store.metrics_frame(run_id)["epoch"].tolist()
    assert epochs == list(range(1, len(epochs) + 1))                 # no gaps, no duplicates
    assert len([e for e in store.event_rows(run_id) if e["kind"] == "resume"]) >= KILLS - 2


@pytest.mark.slow
def test_a_full_disk_ends_the_run_failed_with_the_store_intact(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        store_url = f"sqlite:///{tmp_path / 'lab.db'}"               # the store lives on a roomy disk
        monkeypatch.setenv("LAB_HOME", str(small))                   # checkpoints go to the full one
        done = subprocess.run([sys.executable, "-m", "core", "train", "--dataset", "digits", "--model", "cnn",
                               "--epochs", "2"], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "LAB_STORE": store_url}, timeout=300)
        assert done.returncode == 1 and "No space left on device" in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        run = Store(store_url).list_runs()[0]
        assert run.status is RunStatus.FAILED and "No space left" in run.reason
        with sqlite3.connect(tmp_path / "lab.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert not list(small.rglob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(small)])
