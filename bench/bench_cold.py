"""Cold-call benchmark: what a short piece of work costs once per epoch, against back to back.

The tracker's per-epoch work runs once between two epochs of training. This script times a few
such pieces, each first back to back (the reference, measured in the same run) and then right after
20 ms of something else:
- `json`: 20 `json.dumps` of a 40-key dict (pure Python);
- `pwrite`: 15 `os.pwrite` of 4 KiB into a file (system calls, no disk wait);
- `sqlite`: one transaction of 34 rows into an in-memory SQLite table (no system calls);
- `log_epoch`: one epoch's record into a SQLite store (`core.runs.log_epoch`, 34 rows and the summary);
- `log_epoch_thread`: the same, run by a thread of its own while this one waits for it (as a writer
  thread would make it, if the training thread had to wait for the record).
The 20 ms in between is one of: `python` (a loop over a dict), `torch` (23 steps of the digits MLP
with Adam, one torch thread, as the benchmarked loop trains) or `sleep`. Reported: the median
microseconds per piece, and each as a ratio against its back-to-back time.

    python bench/bench_cold.py [--json] [--reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
GAP_S = 0.020


def pieces(folder: Path) -> dict:
    """name -> a function doing that piece of work once."""
    import core.runs
    from core.tracker import Store
    from core.training import EpochMetrics

    record = {f"k{i}": i * 0.5 for i in range(40)}
    fd = os.open(folder / "pwrite.bin", os.O_RDWR | os.O_CREAT)
    block = os.urandom(4096)
    memory = sqlite3.connect(":memory:", isolation_level=None)
    memory.execute("CREATE TABLE t (a, b, c)")
    store = Store()
    run_id = store.create_run({"bench": "cold"}, name="bench-cold", source="script")
    epoch = [0]

    def log_epoch():
        epoch[0] += 1
        core.runs.log_epoch(store, run_id, EpochMetrics(
            epoch=epoch[0], num_epochs=10 ** 6, step=23 * epoch[0], train_loss=0.5, val_loss=0.4, train_acc=0.9,
            val_acc=0.8, lr=1e-3, momentum=0.9, weight_decay=0.0, grad_clip=0.0, seconds=0.02, samples_per_s=5e4,
            is_best=True, best_epoch=epoch[0], early_stop_counter=0, step_losses=[0.1] * 23, changes=[]))

    def sqlite_rows():
        memory.execute("BEGIN")
        memory.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, 0.5, "x") for i in range(34)])
        memory.execute("COMMIT")

    thread = ThreadPoolExecutor(1)
    return {"json": lambda: [json.dumps(record) for _ in range(20)],
            "pwrite": lambda: [os.pwrite(fd, block, i * 4096) for i in range(15)],
            "sqlite": sqlite_rows, "log_epoch": log_epoch,
            "log_epoch_thread": lambda: thread.submit(log_epoch).result()}


def gaps() -> dict:
    """name -> a function that keeps this thread busy (or asleep) for about GAP_S."""
    import torch

    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 10))
    optimizer = torch.optim.Adam(net.parameters(), fused=True)
    x, y = torch.randn(64, 64), torch.randint(0, 10, (64,))

    def python():
        end, table = time.perf_counter() + GAP_S, {}
        while time.perf_counter() < end:
            for i in range(100):
                table[i] = i * 2.5

    def torch_steps():
        for _ in range(23):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            loss.item()

    return {"python": python, "torch": torch_steps, "sleep": lambda: time.sleep(GAP_S)}


def measure(reps: int, folder: Path) -> dict:
    work, before = pieces(folder), gaps()
    out = {}
    for name, piece in work.items():
        for _ in range(20):                                    # warm-up
            piece()
        times = {"back_to_back": []}
        for _ in range(reps):
            start = time.perf_counter()
            piece()
            times["back_to_back"].append(time.perf_counter() - start)
        for gap_name, gap in before.items():
            times[f"after_{gap_name}"] = []
            for _ in range(reps):
                gap()
                start = time.perf_counter()
                piece()
                times[f"after_{gap_name}"].append(time.perf_counter() - start)
        us = {key: statistics.median(values) * 1e6 for key, values in times.items()}
        out[name] = {"us": us, "vs_back_to_back": {key: value / us["back_to_back"] for key, value in us.items()
                                                   if key != "back_to_back"}}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--reps", type=int, default=100, help="timed repetitions per piece and setting [100]")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as home:
        os.environ["LAB_HOME"] = home
        os.environ.pop("LAB_STORE", None)
        result = measure(args.reps, Path(home))
    if args.json:
        print(json.dumps({"gap_ms": GAP_S * 1e3, "reps": args.reps, "pieces": result}))
        return 0
    print(f"median µs per piece, back to back and right after {GAP_S * 1e3:.0f} ms of other work "
          f"({args.reps} reps each):")
    for name, r in result.items():
        after = "  ".join(f"{key.removeprefix('after_')} {r['us'][key]:8.1f} ({ratio:.2f}x)"
                          for key, ratio in r["vs_back_to_back"].items())
        print(f"  {name:<16} back to back {r['us']['back_to_back']:8.1f}   after: {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
