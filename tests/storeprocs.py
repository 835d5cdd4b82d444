"""Work for the processes that tests start with multiprocessing's spawn. A spawned process imports
the module of the function it runs; this one imports only the store, not the tests' modules (and
through them torch), so each process is ready in about a second instead of five."""

import time

from core.tracker import Store


def open_store_at(url: str, start_at: float) -> int:
    """Wait until the wall-clock time `start_at`, then open the store at `url` and create a run."""
    time.sleep(max(0.0, start_at - time.time()))
    Store(url).create_run({})
    return 1


def log_rows(url: str, run_id: str, worker: int) -> None:
    """1000 metric rows of key `w<worker>`, one transaction each."""
    store = Store(url)
    for i in range(1000):
        store.log_metrics(run_id, {f"w{worker}": float(i)}, step=i)
