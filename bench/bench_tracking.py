"""Tracking benchmark: what recording a run in the store costs, per `log()` call and per epoch.

Part (a), one logged row: N calls (default 2,000) of
- `list.append(dict)`: an in-memory reference, the floor for any logger;
- `Store.log_metrics(run_id, {"loss", "acc"}, step=i)`: the store's write (one transaction);
- `core.wandb.log({"loss": x, "acc": y})`: the W&B-style call (metric rows and the run's summary),
all into a fresh SQLite store under a temporary LAB_HOME. Reported: microseconds per call, metric
rows written per second, and the ratio against the in-memory reference.

Part (b), one epoch: the same config trained with tracking off and on, in this process on the same
tensors, repetitions interleaved (off, checkpoints, on; then on, checkpoints, off; ...) so that a change
in machine load hits every side:
- off: `core.train(config, data)`: no store, no files;
- checkpoints: `core.train(config, data, checkpoint_dir=..., record_steps=True, writer=a writer process)`:
  the files a tracked run writes (best and last checkpoint), as it writes them, without the store;
- on: `core.runs.train_tracked(config, store, run_id, data=data, record_steps=True)`: store rows
  (epoch metrics, step losses, summary), checkpoints, the model artifact and the run's outcome, the
  epoch's record and files written by the run's writer process (`core.writer`);
- thread: the same with `LAB_WRITER=thread`: the writer is a thread of the training process, which
  shares its GIL;
- floor: `core.train(config, data)` untracked, followed after each epoch by the writes a tracked epoch
  must make, with nothing of Torch Lab: see part (c). It is the least a recorded epoch can cost in the
  loop itself, where an epoch of training has just filled the CPU's caches with other things;
- wait: `core.train(config, data)` untracked, followed after each epoch by a busy wait as long as the
  tracked arm's calls took per epoch (so far in the run). It is the control for on minus off: on a
  2-core virtual machine, an epoch that follows any pause, even a spin on the clock, trains slower
  than one that follows the previous epoch at once, by more than the pause itself.
An epoch's time is the wall time between two consecutive yields of the generator, so it includes
what the tracker does for that epoch; the first epoch (warm-up, run set-up) is left out of the
median. Whole-run wall times (set-up and finish included) are reported too. Cases: digits `mlp`
(hidden 32,16, batch 64) and, when real MNIST is present, `cnn` width 32 on 4,000 MNIST samples.

Threads: part (b) trains with one torch thread (`--threads`) and OMP_WAIT_POLICY=PASSIVE (unless set),
as the dashboard's worker does. On 2 cores shared with other work, two spinning OpenMP threads turn
every moment another process holds a core into a stalled step (epochs 5-15x slower, at random),
which would drown the few milliseconds measured here; both sides run with the same settings.

Part (c), the floor: after every epoch a killed run must find that epoch's metrics committed and its
`last` checkpoint on disk (and its `best` one, when the epoch improved), at the latest moments into
the next epoch: the tracked loop hands them to its writer while the next epoch trains. The floor arm
makes all of these writes in the loop, as the loop once did; measured back to back instead,
the same two writes with nothing of Torch Lab in between (the checkpoint's size in bytes written over a
spare file and exchanged with the old one in one rename, by os calls, without an fsync, as the training
loop writes it (`core.savefile.write_in_turn`); the epoch's metric rows and one row update in one
transaction of the sqlite3 module, WAL and synchronous=NORMAL as the store, no index) give the least
such an epoch costs on this disk, measured in the same run. Three
variants are reported beside it: a new file renamed over the old one (the loop's write until
2026-11-29), the same fsynced before its rename (it would then survive a power cut too), and the
bytes written over an existing file in place (no spare, no rename: alone it is not atomic).

Targets: tracking on at most 2% slower per epoch than off (TARGETS["epoch_overhead"]). On a 2-core
virtual machine on minus off cannot resolve 2% of a 25 ms epoch (the wait arm shows by how much it
moves for nothing), so the figure judged is what tracking takes from the training thread, measured
inside the tracked run: the time inside the tracker's calls (`CallTimer`), plus the time the thread
spent off the CPU beyond the untracked arm's (wall minus CPU time per epoch: what it waited for the
GIL, which a writer thread holds at times, or for anything else). A run's first epoch, which forks
the writer process, is reported apart: it is paid once per run, not per epoch. Each case also
reports the shortest epoch for which that cost is 2%, and the same for the floor.

    python bench/bench_tracking.py                 # human-readable lines
    python bench/bench_tracking.py --json          # one JSON object on stdout (progress on stderr)
Options: --calls N, --reps N, --threads N, --mlp-epochs N, --cnn-epochs N, --data-root DIR (default
<repo>/../shared/data), --skip-cnn.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # read when torch loads OpenMP: before any import of it

TARGETS = {"epoch_overhead": 0.02}      # tracked epoch at most 2% slower than untracked
ARMS = ("off", "checkpoints", "on", "thread", "floor", "wait")
TRACKED = ("on", "thread")              # the tracked arms: the writer in a process of its own, or in a thread


def say(text: str, as_json: bool) -> None:
    """Human-readable progress: stdout normally, stderr when stdout carries the JSON."""
    print(text, file=sys.stderr if as_json else sys.stdout, flush=True)


# -- (a) one log() call ------------------------------------------------------------------------------

def seconds_for(fn, calls: int) -> float:
    """Wall seconds for `calls` calls of fn(i)."""
    start = time.perf_counter()
    for i in range(calls):
        fn(i)
    return time.perf_counter() - start


def time_memory(calls: int) -> float:
    rows: list[dict] = []
    return seconds_for(lambda i: rows.append({"loss": 1.0 / (i + 1), "acc": i / calls, "step": i}), calls)


def time_store(calls: int) -> float:
    from core.tracker import Store

    store = Store()
    run_id = store.create_run({"bench": "log_metrics"}, name="bench-log-metrics")
    return seconds_for(lambda i: store.log_metrics(run_id, {"loss": 1.0 / (i + 1), "acc": i / calls}, step=i),
                       calls)


def time_wandb(calls: int) -> float:
    import core.wandb as wandb

    wandb.init(project="bench", name="bench-wandb-log", config={"calls": calls})
    seconds = seconds_for(lambda i: wandb.log({"loss": 1.0 / (i + 1), "acc": i / calls}), calls)
    wandb.finish()
    return seconds


def bench_log(calls: int) -> dict:
    """Per-call cost of each logger; two metric rows per call."""
    out = {}
    for name, timer in (("memory", time_memory), ("log_metrics", time_store), ("wandb_log", time_wandb)):
        seconds = timer(calls)
        out[name] = {"us_per_call": seconds / calls * 1e6, "rows_per_s": 2 * calls / seconds}
    for name in ("log_metrics", "wandb_log"):
        out[name]["vs_memory"] = out[name]["us_per_call"] / out["memory"]["us_per_call"]
    return out


# -- (b) one epoch with tracking off / on --------------------------------------------------------------

def gaps(generator) -> tuple[list[float], float, list[float]]:
    """Seconds between consecutive yields (the first counts from the call), the whole run's seconds,
    and for each gap the seconds this thread spent off the CPU (wall time minus its CPU time: waiting
    for the GIL, a lock or the disk, or preempted)."""
    start = last = time.perf_counter()
    last_cpu = time.thread_time()
    out, off_cpu = [], []
    for _ in generator:
        now, cpu = time.perf_counter(), time.thread_time()
        out.append(now - last)
        off_cpu.append((now - last) - (cpu - last_cpu))
        last, last_cpu = now, cpu
    return out, time.perf_counter() - start, off_cpu


class CallTimer:
    """Wall seconds spent inside the tracker's per-epoch calls while the context is open: the epoch's
    store record handed to the writer (`core.runs.hand_record`), the early-stopping decision
    (`_BestTracker.update`) and the checkpoints (`_BestTracker.save_last`: the `best` one when the
    epoch improved, then `last`; their tensors copied into the writer's shared buffers, and the
    epoch's batch sent to the writer process). Measured inside the tracked run itself, they are free
    of the run-to-run noise that an on-minus-off difference carries, but leave out indirect costs
    (caches, the disk's work after the call returns, waits for the GIL). Waits show as the training
    thread's time off the CPU, measured apart (`gaps`). The writer process's own CPU time (the store's
    transaction, rendering the records, hashing, writing the files) is read from the operating system
    when the process is reaped at the run's end (`resource.RUSAGE_CHILDREN`), under `writer_cpu`."""

    CALLS = ("record", "update", "checkpoints")            # in the training thread; the rest in the writer

    def __init__(self):
        import core.runs
        import core.training

        self.targets = {"record": (core.runs, "hand_record"), "update": (core.training._BestTracker, "update"),
                        "checkpoints": (core.training._BestTracker, "save_last")}
        self.runs: list[dict[str, list[float]]] = []          # per run: each call's seconds, by label
        self.writer_cpu_s = 0.0

    def later_ms(self) -> dict[str, float]:
        """Mean milliseconds per epoch inside each call, over every run's epochs after its first (the
        first epoch's calls start the writer process: `first_ms`)."""
        return {label: _mean([s for run in self.runs for s in run[label][1:]]) * 1e3 for label in self.CALLS}

    def first_ms(self) -> float:
        """Mean milliseconds inside the calls of a run's first epoch (the writer process forked)."""
        return _mean([sum(run[label][0] for label in self.CALLS if run[label]) for run in self.runs]) * 1e3

    def _timed(self, label: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.runs[-1][label].append(time.perf_counter() - start)
        return timed

    def __enter__(self) -> "CallTimer":
        self.runs.append({label: [] for label in self.CALLS})
        self.saved = {label: getattr(owner, name) for label, (owner, name) in self.targets.items()}
        for label, (owner, name) in self.targets.items():
            setattr(owner, name, self._timed(label, self.saved[label]))
        self.children_cpu = children_cpu_s()
        return self

    def __exit__(self, *exc) -> None:
        for label, (owner, name) in self.targets.items():
            setattr(owner, name, self.saved[label])
        self.writer_cpu_s += children_cpu_s() - self.children_cpu


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (the writer processes of the runs so far)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_arm(arm: str, config, data, store, scratch: Path, rep: int, timer: CallTimer,
            wait_s: float = 0.0) -> tuple[list[float], float, list[float]]:
    """Train `config` once in one arm; (seconds per epoch, whole-run seconds). In the tracked arm,
    `timer` adds up the time spent in the tracker's per-epoch calls; the wait arm spins `wait_s`
    seconds after each epoch."""
    from core.runs import train_tracked
    from core.training import train
    from core.writer import Writer

    if arm == "off":
        return gaps(train(config, data))
    if arm == "wait":
        return gaps(spin_after(train(config, data, record_steps=True), wait_s))
    if arm == "checkpoints":
        return gaps(train(config, data, checkpoint_dir=scratch / f"ckpt-{rep}", record_steps=True,
                          writer=Writer(process=True)))          # the files as a tracked run writes them
    if arm == "floor":
        return gaps(floor_epochs(train(config, data, record_steps=True), scratch / f"floor-{rep}",
                                 {stem: (scratch / "ckpt-0" / f"{stem}.safetensors").stat().st_size
                                  for stem in ("best", "last")}))
    run_id = store.create_run(config.to_dict(), name=f"bench-{arm}-{rep}", source="script")
    previous = os.environ.get("LAB_WRITER")
    os.environ["LAB_WRITER"] = "thread" if arm == "thread" else "process"
    try:
        with timer:
            return gaps(train_tracked(config, store, run_id, data=data, record_steps=True))
    finally:
        if previous is None:
            del os.environ["LAB_WRITER"]
        else:
            os.environ["LAB_WRITER"] = previous


def training_thread_cost(timer: CallTimer, tracked_epochs: int, result: dict, arm: str) -> dict:
    """What tracking takes from the training thread per epoch in the tracked `arm`: the time inside
    the tracker's calls, plus the time the thread spent off the CPU beyond the untracked arm's
    (waits the calls leave out); and the ratio of the tracked epoch to itself without both."""
    inside = timer.later_ms()
    inside_ms = sum(inside.values())
    waited_ms = max(result["off_cpu_ms"][arm] - result["off_cpu_ms"]["off"], 0.0)
    on_ms = result["epoch_s"][arm] * 1e3
    ratio = on_ms / (on_ms - inside_ms - waited_ms)
    return {"ms_per_epoch": inside_ms, "by_call_ms": inside, "waited_ms": waited_ms,
            "cost_ms": inside_ms + waited_ms, "ratio": ratio, "met": ratio <= 1 + TARGETS["epoch_overhead"],
            "first_epoch_ms": timer.first_ms(), "writer_cpu_ms": timer.writer_cpu_s / tracked_epochs * 1e3}


def spin_after(epochs, seconds: float):
    """Yield what `epochs` yields, then busy-wait `seconds` on the clock before asking for the next."""
    for m in epochs:
        yield m
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass


def compare_epochs(config, reps: int, scratch: Path, as_json: bool) -> dict:
    """Interleaved repetitions of every arm; medians of the later epochs and of whole runs."""
    from core.runs import EPOCH_KEYS, prepare_data
    from core.tracker import Store

    data, store = prepare_data(config), Store()
    epochs = {arm: [] for arm in ARMS}
    runs = {arm: [] for arm in ARMS}
    off_cpu = {arm: [] for arm in ARMS}
    timers, warmup, tracked_epochs = {arm: CallTimer() for arm in TRACKED}, CallTimer(), dict.fromkeys(TRACKED, 0)
    for rep in range(reps + 1):                              # rep 0 warms up and is not counted
        for arm in ARMS if rep % 2 == 0 else reversed(ARMS):
            timer = timers.get(arm, warmup) if rep else warmup
            on = timers["on"] if timers["on"].runs else warmup
            wait_s = sum(on.later_ms().values()) / 1e3 if on.runs else 0.0
            per_epoch, total, waits = run_arm(arm, config, data, store, scratch, rep, timer, wait_s)
            if rep > 0 and arm in TRACKED:
                tracked_epochs[arm] += len(per_epoch)
            if rep > 0:
                epochs[arm] += per_epoch[1:]
                off_cpu[arm] += waits[1:]
                runs[arm].append(total)
        say(f"  rep {rep}/{reps} done", as_json)
    result = summarize(epochs, runs, data.num_train)
    result["off_cpu_ms"] = {arm: statistics.median(values) * 1e3 for arm, values in off_cpu.items()}
    result["inside_calls"] = training_thread_cost(timers["on"], tracked_epochs["on"], result, "on")
    result["thread_writer"] = training_thread_cost(timers["thread"], tracked_epochs["thread"], result, "thread")
    rows = len(EPOCH_KEYS) + 1 + -(-data.num_train // config.batch_size)     # epoch values, then step losses
    floor = durable_floor(scratch / "floor", (scratch / "ckpt-1" / "last.safetensors").stat().st_size, rows)
    off_ms = result["epoch_s"]["off"] * 1e3
    for key in ("ms", "kill_ms", "renamed_ms", "in_place_ms"):
        floor[key.replace("ms", "vs_off")] = floor[key] / off_ms
    result["floor"] = floor
    share = TARGETS["epoch_overhead"]
    result["break_even_epoch_ms"] = {"measured": result["inside_calls"]["cost_ms"] / share,
                                     "floor": floor["kill_ms"] / share, "renamed_floor": floor["renamed_ms"] / share,
                                     "fsync_floor": floor["ms"] / share, "in_place_floor": floor["in_place_ms"] / share}
    return result


def floor_epochs(epochs, folder: Path, sizes: dict[str, int]):
    """Yield what the untracked generator `epochs` yields; around each epoch, make the writes a tracked
    epoch makes, as cheaply as Python can: the `best` checkpoint's bytes (`sizes`) over a spare file
    and exchanged when the epoch improved, the epoch's metric rows and summary in one transaction, then
    the `last` checkpoint's bytes the same way."""
    folder.mkdir(parents=True, exist_ok=True)
    payloads = {stem: os.urandom(size) for stem, size in sizes.items()}
    for stem, payload in payloads.items():
        (folder / f"{stem}.bin").write_bytes(payload)
    db = floor_db(folder / "floor.db")
    for index, m in enumerate(epochs):
        if m.is_best:
            write_and_exchange(folder / ".best.spare", folder / "best.bin", payloads["best"])
        commit_rows(db, index, [(v, i) for i, v in enumerate((m.train_loss, m.val_loss, m.train_acc, m.val_acc, m.lr,
                                                             m.momentum, m.weight_decay, 0.0, m.seconds,
                                                             m.samples_per_s, m.epoch, *m.step_losses))])
        yield m
        write_and_exchange(folder / ".last.spare", folder / "last.bin", payloads["last"])
    db.close()


def floor_db(path: Path) -> sqlite3.Connection:
    """A SQLite file set up as the store's (WAL, synchronous=NORMAL), with a metrics table, no index."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE metrics (run_id TEXT, key TEXT, value REAL, step INTEGER, epoch INTEGER, t REAL)")
    db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, summary TEXT, heartbeat_at REAL)")
    db.execute("INSERT INTO runs VALUES ('floor', '{}', 0)")
    return db


def commit_rows(db: sqlite3.Connection, epoch: int, values: list[tuple[float, int]]) -> None:
    """One epoch's record: the run row's heartbeat and summary, and one metric row per (value, step)."""
    now = time.perf_counter()
    db.execute("BEGIN")
    db.execute("UPDATE runs SET heartbeat_at = ?, summary = ? WHERE id = 'floor'", (now, json.dumps({"epoch": epoch})))
    db.executemany("INSERT INTO metrics VALUES ('floor', 'k', ?, ?, ?, ?)", [(v, i, epoch, now) for v, i in values])
    db.execute("COMMIT")


def write_and_rename(folder: Path, name: str, payload: bytes, fsync: bool) -> float:
    """Seconds to write `payload` to a new file in `folder` (fsynced when asked) and rename it over `name`."""
    start = time.perf_counter()
    tmp = folder / f".{name}.{time.perf_counter_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, payload)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, folder / name)
    return time.perf_counter() - start


def overwrite_in_place(path: Path, payload: bytes) -> float:
    """Seconds to write `payload` over the start of the existing file `path`, without an fsync."""
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, payload, 0)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def write_and_exchange(spare: Path, path: Path, payload: bytes) -> float:
    """Seconds to write `payload` over the existing `spare` and swap it with `path` in one rename
    (a plain rename where the exchange is not available), without an fsync."""
    from core.savefile import exchange

    start = time.perf_counter()
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, payload, 0)
    finally:
        os.close(fd)
    if not exchange(spare, path):
        os.replace(spare, path)
    return time.perf_counter() - start


def durable_floor(folder: Path, checkpoint_bytes: int, rows: int, reps: int = 60) -> dict:
    """Median milliseconds of the two writes each epoch needs, done as cheaply as Python can:
    `checkpoint_bytes` written over a spare file exchanged with the previous one (the loop's way), or
    to a new file renamed over the previous one, without an fsync (it survives a killed process) and
    with one (a power cut too), or written over an existing file in place; `rows` metric rows and one
    update of a run row in one SQLite transaction."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = os.urandom(checkpoint_bytes)
    for name in ("in-place.bin", "exchanged.bin", ".exchanged.spare"):
        (folder / name).write_bytes(payload)
    db = floor_db(folder / "floor.db")
    times = {"file_exchanged_ms": [], "file_renamed_ms": [], "file_ms": [], "file_in_place_ms": [], "commit_ms": []}
    for rep in range(reps):
        times["file_ms"].append(write_and_rename(folder, "last.bin", payload, fsync=True))
        times["file_renamed_ms"].append(write_and_rename(folder, "last-unsynced.bin", payload, fsync=False))
        times["file_exchanged_ms"].append(write_and_exchange(folder / ".exchanged.spare", folder / "exchanged.bin",
                                                             payload))
        times["file_in_place_ms"].append(overwrite_in_place(folder / "in-place.bin", payload))
        start = time.perf_counter()
        commit_rows(db, rep, [(0.5, i) for i in range(rows)])
        times["commit_ms"].append(time.perf_counter() - start)
    db.close()
    out = {"checkpoint_bytes": checkpoint_bytes, "rows": rows,
           **{key: statistics.median(values) * 1e3 for key, values in times.items()}}
    out["kill_ms"] = out["file_exchanged_ms"] + out["commit_ms"]    # what the training loop does: survives a kill
    out["renamed_ms"] = out["file_renamed_ms"] + out["commit_ms"]   # the loop's write until 2026-11-29
    out["ms"] = out["file_ms"] + out["commit_ms"]                   # survives a power cut
    out["in_place_ms"] = out["file_in_place_ms"] + out["commit_ms"]
    return out


def summarize(epochs: dict, runs: dict, num_train: int) -> dict:
    med = {arm: statistics.median(v) for arm, v in epochs.items()}
    run_med = {arm: statistics.median(v) for arm, v in runs.items()}
    return {"num_train": num_train, "epoch_s": med, "run_s": run_med,
            "epoch_samples": {arm: len(v) for arm, v in epochs.items()},
            "ratio_on_off": med["on"] / med["off"], "ratio_ckpt_off": med["checkpoints"] / med["off"],
            "added_ms_per_epoch": (med["on"] - med["off"]) * 1e3,
            "store_ms_per_epoch": (med["on"] - med["checkpoints"]) * 1e3,
            "checkpoint_ms_per_epoch": (med["checkpoints"] - med["off"]) * 1e3,
            "floor_in_loop": {"ms_per_epoch": (med["floor"] - med["off"]) * 1e3, "ratio_floor_off": med["floor"] / med["off"],
                              "ratio_on_floor": med["on"] / med["floor"]},
            "wait_control": {"ms_per_epoch": (med["wait"] - med["off"]) * 1e3, "ratio_wait_off": med["wait"] / med["off"],
                             "ratio_on_wait": med["on"] / med["wait"]},
            "met": med["on"] / med["off"] <= 1 + TARGETS["epoch_overhead"]}


def cases(args) -> list[tuple[str, object]]:
    """(name, TrainConfig) for each case that can run here."""
    from core.config import TrainConfig

    out = [("digits-mlp", TrainConfig(dataset="digits", model="mlp", batch_size=64, epochs=args.mlp_epochs))]
    raw = Path(args.data_root) / "MNIST" / "raw"
    if not args.skip_cnn and raw.is_dir():
        out.append(("mnist-cnn", TrainConfig(dataset="mnist", model="cnn", width=32, max_samples=4000,
                                             batch_size=64, epochs=args.cnn_epochs, data_root=str(args.data_root))))
    return out


# -- output ----------------------------------------------------------------------------------------

def report_log(result: dict, calls: int, as_json: bool) -> None:
    say(f"(a) one log() call, {calls} calls, 2 metric rows each:", as_json)
    for name, r in result.items():
        ratio = f"  ({r['vs_memory']:.0f}x the in-memory list)" if "vs_memory" in r else ""
        say(f"  {name:<12} {r['us_per_call']:9.1f} us/call  {r['rows_per_s']:12,.0f} rows/s{ratio}", as_json)


def report_case(name: str, r: dict, as_json: bool) -> None:
    e, runs = r["epoch_s"], r["run_s"]
    say(f"(b) {name}: {r['num_train']} train samples, median of {r['epoch_samples']['on']} later epochs per arm",
        as_json)
    for arm in ARMS:
        say(f"  {arm:<12} {e[arm] * 1e3:8.2f} ms/epoch   whole run {runs[arm]:6.2f} s", as_json)
    verdict = "met" if r["met"] else "NOT met"
    say(f"  tracked / untracked: {r['ratio_on_off']:.3f} (+{r['added_ms_per_epoch']:.2f} ms/epoch: "
        f"checkpoint files {r['checkpoint_ms_per_epoch']:+.2f} ms, store rows {r['store_ms_per_epoch']:+.2f} ms); "
        f"target <= {1 + TARGETS['epoch_overhead']:.2f}: {verdict}", as_json)
    loop = r["floor_in_loop"]
    say(f"  floor in the loop (the same writes with nothing of Torch Lab): {loop['ratio_floor_off']:.3f} of untracked "
        f"(+{loop['ms_per_epoch']:.2f} ms/epoch); tracked / floor: {loop['ratio_on_floor']:.3f}", as_json)
    wait = r["wait_control"]
    say(f"  control, a busy wait as long as the tracker's calls: {wait['ratio_wait_off']:.3f} of untracked "
        f"(+{wait['ms_per_epoch']:.2f} ms/epoch); tracked / control: {wait['ratio_on_wait']:.3f}", as_json)
    inside, off = r["inside_calls"], r["off_cpu_ms"]
    parts = ", ".join(f"{label} {ms:.2f}" for label, ms in inside["by_call_ms"].items())
    say(f"  the training thread off the CPU per epoch (median): " +
        ", ".join(f"{arm} {off[arm]:.3f} ms" for arm in ARMS), as_json)
    say(f"  inside the tracker's calls: {inside['ms_per_epoch']:.2f} ms per tracked epoch ({parts}), plus "
        f"{inside['waited_ms']:.2f} ms off the CPU beyond untracked: {inside['cost_ms']:.2f} ms; the tracked epoch "
        f"is {inside['ratio']:.3f}x itself without them: {'met' if inside['met'] else 'NOT met'}; "
        f"the writer process: {inside['writer_cpu_ms']:.2f} ms of CPU per epoch, on another core; a run's first "
        f"epoch, which forks it: {inside['first_epoch_ms']:.2f} ms in the calls", as_json)
    thread = r["thread_writer"]
    say(f"  the same with the writer in a thread of the training process (LAB_WRITER=thread): "
        f"{thread['ms_per_epoch']:.2f} ms inside the calls, plus {thread['waited_ms']:.2f} ms off the CPU: "
        f"{thread['cost_ms']:.2f} ms = {thread['ratio']:.3f}x", as_json)
    f, even = r["floor"], r["break_even_epoch_ms"]
    say(f"  floor on this disk: {f['kill_ms']:.2f} ms per epoch = {f['kill_vs_off']:.1%} of the untracked epoch "
        f"({f['checkpoint_bytes'] / 1024:.0f} KiB written over a spare and exchanged {f['file_exchanged_ms']:.2f} ms; "
        f"{f['rows']} rows committed {f['commit_ms']:.2f} ms); to a new file renamed over the old "
        f"{f['renamed_ms']:.2f} ms = {f['renamed_vs_off']:.1%}; with an fsync before that rename {f['ms']:.2f} ms = "
        f"{f['vs_off']:.1%}; overwriting a file in place instead {f['in_place_ms']:.2f} ms = {f['in_place_vs_off']:.1%}",
        as_json)
    say(f"  2% of an epoch covers the training thread's cost from {even['measured']:.0f} ms epochs, the floor from "
        f"{even['floor']:.0f} ms (renamed {even['renamed_floor']:.0f} ms, with fsync {even['fsync_floor']:.0f} ms, "
        f"in place {even['in_place_floor']:.0f} ms)", as_json)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--calls", type=int, default=2000, help="log() calls in part (a) [2000]")
    parser.add_argument("--reps", type=int, default=6, help="counted repetitions per arm in part (b) [6]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in part (b) [1]")
    parser.add_argument("--mlp-epochs", type=int, default=20)
    parser.add_argument("--cnn-epochs", type=int, default=4)
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--skip-cnn", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as home:
        os.environ["LAB_HOME"] = home                      # before any store is opened
        os.environ.pop("LAB_STORE", None)
        import torch

        torch.set_num_threads(args.threads)
        result = {"log": bench_log(args.calls), "threads": args.threads,
                  "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "epochs": {}}
        report_log(result["log"], args.calls, args.json)
        for name, config in cases(args):
            say(f"(b) {name}: training ({args.threads} torch thread(s), OMP_WAIT_POLICY="
                f"{os.environ['OMP_WAIT_POLICY']})...", args.json)
            result["epochs"][name] = compare_epochs(config, args.reps, Path(home) / name, args.json)
            report_case(name, result["epochs"][name], args.json)
    if args.json:
        print(json.dumps({"targets": TARGETS, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
