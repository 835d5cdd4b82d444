"""Dashboard benchmark: how soon a run started from the Train page shows up, and how fast it trains.

Both parts run against the real app: `streamlit run app.py` on 127.0.0.1 with a temporary LAB_HOME,
in its own process group (so that stopping it also stops the training worker it started).

Part (a), click to first point: Debian's chromium (driven by Playwright) opens the home page, which
starts the warm training worker; a 1-epoch probe run submitted with `core.worker.submit` and trained
to the end proves that the worker is warm. Then, 5 times (`--clicks`): open /Train in a fresh
session, click the form's Start button, and time until the Loss chart has its first epoch point
(the chart's first trace, read from plotly's `gd._fullData`, as tests/test_browser.py does); wait
for the run to end before the next click. The config is the form's default (digits, mlp). Each click
is split, from the store's timestamps, into: click to queued run (page script, `submit`), queued to
first epoch stored (worker claim, fork, data, epoch 1), stored to drawn (the page's 1 s live poll,
plotly). Target: median under 3 s.

Part (b), throughput: digits, mlp 256,256, batch 32, 15 epochs, trained (1) from the app, through
`core.worker.submit` and the app's running supervisor (`python -m core worker`: a forked child
with the cores shared out among the job slots, `LAB_MAX_JOBS`, 2 by default, so 1 thread on 2 cores;
OMP_WAIT_POLICY=PASSIVE), and (2) by `core.train` in this process with the same torch thread count
and OMP_WAIT_POLICY (set to PASSIVE here unless given), and (3) as a reference, `core.train` with all
of torch's default threads. Sides interleaved, 3 repetitions (`--reps`); the
browser is closed by then. Compared: median training samples/s over epochs 2..N, from the store's
`samples_per_s` rows for (1) and `EpochMetrics.samples_per_s` for (2), (3). Target: (1) at least 95%
of (2). Without a browser (`--skip-browser`) no page starts the worker, so the script starts the same
`python -m core worker` command with the app's worker environment.

    python bench/bench_app.py                    # both parts, human-readable lines
    python bench/bench_app.py --json             # one JSON object on stdout (progress on stderr)
Options: --clicks N, --reps N, --epochs N, --skip-browser, --skip-throughput, --keep-logs DIR.
Needs chromium at /usr/bin/chromium and the playwright package (part (a) is skipped without them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # as the worker's children have it; before torch loads

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
TARGETS = {"first_point_s": 3.0, "throughput_ratio": 0.95}
HAS_POINT_JS = """(title) => {
    for (const gd of document.querySelectorAll('.js-plotly-plot')) {
        const t = String((gd.layout && gd.layout.title && gd.layout.title.text) || '');
        const full = gd._fullData || [];
        if (t.replace(/<[^>]*>/g, '') === title && full.length && full[0].x && full[0].x.length >= 1) return true;
    }
    return false;
}"""


def say(text: str, as_json: bool) -> None:
    print(text, file=sys.stderr if as_json else sys.stdout, flush=True)


def wait_for(check, seconds: float, interval_s: float = 0.1):
    """check()'s first truthy value; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        time.sleep(interval_s)
    raise TimeoutError(f"gave up after {seconds:.0f} s")


# -- the server --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` in its own session (process group); (process, base url) once healthy."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200, 90, 0.3)
    return process, url


def start_worker(log: Path) -> subprocess.Popen:
    """The supervisor the app starts on page load (`python -m core worker`, the app's environment), for
    runs without a browser; in its own process group."""
    from core.worker import job_slots, worker_environment

    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "core", "worker", "--slots", str(job_slots())], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=worker_environment(), start_new_session=True)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process' group (the server and its worker), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass


def ended(store, run_id: str):
    """The run's record once it has ended, else None."""
    run = store.get_run(run_id)
    return run if run.status.is_final else None


def wait_until_ended(store, run_id: str, seconds: float = 300):
    return wait_for(lambda: ended(store, run_id), seconds, 0.1)


def warm_worker(store) -> float:
    """Seconds until a 1-epoch probe run, queued with `submit`, has been trained by the worker."""
    from core.config import TrainConfig
    from core.worker import submit

    start = time.perf_counter()
    run = wait_until_ended(store, submit(TrainConfig(epochs=1), store=store, name="bench-probe"), 180)
    if run.status.value != "finished":
        raise SystemExit(f"the probe run ended {run.status.value}: {run.reason}")
    return time.perf_counter() - start


# -- (a) click to first point ------------------------------------------------------------------------

def open_train_page(page, url: str) -> None:
    """/Train in a fresh session, with its script run to the end (the running-status widget gone)."""
    page.goto(f"{url}/Train")
    page.get_by_role("button", name="Start").wait_for(timeout=60_000)
    page.get_by_text("Dataset preview").wait_for(timeout=60_000)
    page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=60_000)
    page.wait_for_timeout(500)


def click_once(page, url: str, store) -> dict:
    """Click Start; seconds to the first Loss point, and the split from the store's timestamps."""
    open_train_page(page, url)
    before = {r.run_id for r in store.list_runs()}
    clicked_at, start = time.time(), time.perf_counter()
    page.get_by_role("button", name="Start").click()
    page.wait_for_function(HAS_POINT_JS, arg="Loss", polling=20, timeout=120_000)
    seconds, drawn_at = time.perf_counter() - start, time.time()
    run = next(r for r in store.list_runs() if r.run_id not in before)
    first = min(r["wall_time"] for r in store.metric_rows(run.run_id, keys=["train_loss"]))
    run = wait_until_ended(store, run.run_id)
    return {"run_id": run.run_id, "status": run.status.value, "seconds": seconds,
            "to_queued_s": run.created_at - clicked_at, "to_first_epoch_stored_s": first - run.created_at,
            "stored_to_drawn_s": drawn_at - first}


def bench_clicks(url: str, store, clicks: int, as_json: bool) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)                                   # the home page starts the worker
        page.get_by_text("Latest runs").first.wait_for(timeout=60_000)
        warm_s = warm_worker(store)
        say(f"(a) worker warm: probe run trained {warm_s:.1f} s after it was queued", as_json)
        samples = []
        for i in range(clicks):
            samples.append(click_once(page, url, store))
            c = samples[-1]
            say(f"  click {i + 1}/{clicks}: first point after {c['seconds']:.2f} s (queued {c['to_queued_s']:.2f} s, "
                f"epoch 1 stored +{c['to_first_epoch_stored_s']:.2f} s, drawn +{c['stored_to_drawn_s']:.2f} s)",
                as_json)
        browser.close()
    median = statistics.median(s["seconds"] for s in samples)
    return {"warm_up_s": warm_s, "samples": samples, "median_s": median,
            "met": median < TARGETS["first_point_s"]}


# -- (b) throughput from the app vs in this process ------------------------------------------------------

def app_samples_per_s(store, config, threads: int) -> float:
    """Median samples/s over epochs 2..N of a run trained by the app's worker (which must have used
    `threads` torch threads, as its start event records)."""
    from core.worker import submit

    run = wait_until_ended(store, submit(config, store=store, name="bench-throughput"))
    if run.status.value != "finished":
        raise SystemExit(f"the app's run ended {run.status.value}: {run.reason}")
    start = next(e["data"] for e in store.event_rows(run.run_id) if e["kind"] == "start")
    if start["torch_threads"] != threads:
        raise SystemExit(f"the app's run trained with {start['torch_threads']} threads, not {threads}")
    return statistics.median(store.metrics_frame(run.run_id)["samples_per_s"].tolist()[1:])


def direct_samples_per_s(config, data, threads: int) -> float:
    """Median samples/s over epochs 2..N of `core.train` in this process with `threads` torch threads."""
    import torch

    from core.training import train

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return statistics.median([m.samples_per_s for m in train(config, data)][1:])
    finally:
        torch.set_num_threads(previous)


def bench_throughput(store, reps: int, epochs: int, as_json: bool) -> dict:
    import torch

    from core.config import TrainConfig
    from core.datasets import load_dataset

    config = TrainConfig(dataset="digits", model="mlp", hidden=(256, 256), batch_size=32, epochs=epochs)
    from core.worker import job_slots

    data, all_threads = load_dataset(config), torch.get_num_threads()
    threads = max(1, all_threads // job_slots())          # what the worker gives each job
    sides = {"app": lambda: app_samples_per_s(store, config, threads),
             "direct": lambda: direct_samples_per_s(config, data, threads),
             f"direct, {all_threads} threads": lambda: direct_samples_per_s(config, data, all_threads)}
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for rep in range(reps):
        for name in sides if rep % 2 == 0 else reversed(sides):
            samples[name].append(sides[name]())
        say(f"(b) rep {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in samples.items()), as_json)
    med = {name: statistics.median(v) for name, v in samples.items()}
    ratio = med["app"] / med["direct"]
    return {"config": config.to_dict(), "threads": threads, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
            "samples": samples, "median": med, "ratio": ratio, "met": ratio >= TARGETS["throughput_ratio"]}


# -- output ----------------------------------------------------------------------------------------

def report_clicks(r: dict, as_json: bool) -> None:
    values = ", ".join(f"{s['seconds']:.2f}" for s in r["samples"])
    say(f"(a) click Start -> first Loss point: median {r['median_s']:.2f} s  [{values}]", as_json)
    splits = (("to_queued_s", "click -> run queued"), ("to_first_epoch_stored_s", "queued -> epoch 1 stored"),
              ("stored_to_drawn_s", "stored -> drawn"))
    for key, label in splits:
        say(f"    {label:<26} median {statistics.median(s[key] for s in r['samples']):.2f} s", as_json)
    say(f"  target < {TARGETS['first_point_s']} s: {'met' if r['met'] else 'NOT met'}", as_json)


def report_throughput(r: dict, as_json: bool) -> None:
    say(f"(b) samples/s, median over epochs 2..N, median of {len(r['samples']['app'])} runs "
        f"({r['threads']} torch threads, OMP_WAIT_POLICY={r['omp_wait_policy']}):", as_json)
    for name, value in r["median"].items():
        say(f"    {name:<18} {value:10,.0f}", as_json)
    say(f"  app / direct: {r['ratio']:.3f}; target >= {TARGETS['throughput_ratio']}: "
        f"{'met' if r['met'] else 'NOT met'}", as_json)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--clicks", type=int, default=5, help="Start clicks in part (a) [5]")
    parser.add_argument("--reps", type=int, default=3, help="runs per side in part (b) [3]")
    parser.add_argument("--epochs", type=int, default=15, help="epochs per run in part (b) [15]")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--keep-logs", type=Path, help="copy the server and worker logs here")
    return parser.parse_args(argv)


def browser_available() -> bool:
    from importlib.util import find_spec

    return find_spec("playwright") is not None and Path(CHROMIUM).exists()


def run_parts(args, home: Path, result: dict) -> None:
    from core.tracker import Store

    store = Store()
    process, url = start_server(home / "server.log")
    processes = [process]
    try:
        browser = not args.skip_browser and browser_available()
        if browser:
            result["clicks"] = bench_clicks(url, store, args.clicks, args.json)
            report_clicks(result["clicks"], args.json)
        elif not args.skip_browser:
            say(f"(a) skipped: needs playwright and {CHROMIUM}", args.json)
        if not args.skip_throughput:
            if not browser:                               # no page was opened, so the app started no worker
                processes.append(start_worker(home / "worker.log"))
            warm_worker(store)
            result["throughput"] = bench_throughput(store, args.reps, args.epochs, args.json)
            report_throughput(result["throughput"], args.json)
    finally:
        for running in processes:
            stop_group(running)
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for name in ("server.log", "worker.log"):
                if (home / name).exists():
                    shutil.copy(home / name, args.keep_logs / name)


def main(argv=None) -> int:
    args = parse_args(argv)
    result: dict = {"targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="bench-app-") as home:
        os.environ["LAB_HOME"] = home                      # the server, its worker and this process share it
        os.environ.pop("LAB_STORE", None)
        run_parts(args, Path(home), result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
