"""Sweeps benchmark: what hyperband saves, and what a second agent process buys on 2 cores.

Part (a), hyperband: one random search of 24 runs over the `mlp` on digits (lr log_uniform_values 1e-4..1e-1,
batch_size q_uniform 16..128 by 16, dropout uniform 0..0.5, optimizer adam/sgd/rmsprop, hidden
32,16 / 64,32 / 128,64; 18 epochs, so that hyperband's brackets 2, 6, 18 end where training does;
metric val_acc, maximize), run twice: without early termination and with hyperband (min_iter 2,
eta 3 by default). Reported per sweep: the best val_acc of any run, the epochs trained in total (the
sum over runs of the epochs in `Store.metrics_frame`) and the wall time; this for 8 draws of
configurations (seeds 0-7), since how much hyperband saves depends on the order in which good and
bad runs arrive: with one agent each run is judged against the runs before it, so early runs face a
small pool and go on more easily (and a sweep of few runs saves less: `--runs 12` shows it; the
first 12 configurations of a seed are the same at any `--runs`). Targets: hyperband's best within 1 point
of the full sweep's (in every draw) while training at most half as many epochs (summed over draws;
each draw's figure is shown too).

A fair comparison needs both sweeps to try the same configurations in the same order. The random
method draws from a fresh, unseeded `np.random.default_rng()` on every proposal (core.sweeps.propose),
so two random sweeps never see the same draws, and a grid cannot list whole configurations (it
crosses the values of each parameter). So the configurations are drawn once per seed here, with
`core.sweepsample.sample_random(spec, np.random.default_rng(seed))`, the method's own sampler; both
sweeps are created with that random spec, and each trial is recorded with `Store.add_trial` and
trained by `core.sweeps.run_builtin_trial` under a `Heartbeat`: the agent's own loop, with only the
proposal step fixed. Hyperband's checks (every epoch, against all the sweep's runs) are core's.
Dropout acts only in the `cnn`; on the `mlp` it is carried but has no effect.

Part (b), throughput: one grid of 8 short runs (mlp 256,256 on digits, batch 32, 15 epochs; lr x
optimizer x seed) trained by `python -m core sweep agent ID --processes 1` and by `--processes 2`
(the CLI splits torch threads between processes: torch's default, 2 here, for one agent; 1 each for
two), and as a reference by one agent held to 1 thread (`--threads 1`), which tells the gain of a
second process from the cost of a second thread. A fresh sweep per repetition; the order of the
sides is reversed every other repetition. Reported: wall seconds from the
command's start to its exit (process start-up included), runs per hour, and the ratio; and the span
from the first trial's creation to the last one's end (start-up left out). Target: 2 agents give at
least 1.3x the runs per hour of 1. Agents run with OMP_WAIT_POLICY=PASSIVE unless it is set (as the
dashboard's worker does): on a shared machine spinning OpenMP threads make timings meaningless.

    python bench/bench_sweeps.py                 # both parts, human-readable lines
    python bench/bench_sweeps.py --json          # one JSON object on stdout (progress on stderr)
Options: --runs N, --epochs N, --eta X, --min-iter N, --strict (hyperband judges a run's value at
the bracket, not its best so far), --metric val_acc|val_loss (the metric hyperband judges; accuracy
is compared either way), --seeds 0,1,2, --grid-epochs N, --reps N, --skip-hyperband,
--skip-throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # read when torch loads OpenMP, here and in agents

TARGETS = {"best_acc_points": 1.0, "epoch_fraction": 0.5, "agents_speedup": 1.3}

SEARCH = {
    "method": "random",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "parameters": {
        "dataset": {"value": "digits"},
        "model": {"value": "mlp"},
        "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "batch_size": {"distribution": "q_uniform", "min": 16, "max": 128, "q": 16},
        "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
        "optimizer": {"values": ["adam", "sgd", "rmsprop"]},
        "hidden": {"values": [[32, 16], [64, 32], [128, 64]]},
    },
}

GRID = {
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "parameters": {
        "dataset": {"value": "digits"},
        "hidden": {"value": [256, 256]},
        "batch_size": {"value": 32},
        "lr": {"values": [1e-3, 3e-3]},
        "optimizer": {"values": ["adam", "sgd"]},
        "seed": {"values": [1, 2]},
    },
}


def say(text: str, as_json: bool) -> None:
    print(text, file=sys.stderr if as_json else sys.stdout, flush=True)


# -- (a) hyperband on the same configurations ------------------------------------------------------

def search_spec(epochs: int, eta: float | None, metric: str = "val_acc", strict: bool = False,
                min_iter: int = 2) -> dict:
    """The random search with `epochs` fixed and `metric` as the sweep's metric; hyperband when `eta`
    is given (judging each run's best value so far, or with `strict` its value at the bracket)."""
    spec = json.loads(json.dumps(SEARCH))
    spec["parameters"]["epochs"] = {"value": epochs}
    spec["metric"] = {"name": metric, "goal": "minimize" if metric.endswith("loss") else "maximize"}
    if eta is not None:
        spec["early_terminate"] = {"type": "hyperband", "min_iter": min_iter, "eta": eta, "strict": strict}
    return spec


def draw_trials(spec: dict, runs: int, seed: int) -> list[dict]:
    """`runs` configurations from the random method's own sampler, with a seeded generator."""
    import numpy as np

    from core.sweepsample import sample_random
    from core.sweepspec import load_spec

    rng = np.random.default_rng(seed)
    parsed = load_spec(spec)
    return [sample_random(parsed, rng) for _ in range(runs)]


def run_trials(store, spec: dict, trials: list[dict], name: str) -> tuple[str, float]:
    """Create a sweep and train each trial as an agent would; (sweep id, wall seconds)."""
    from core.sweeps import Heartbeat, Trial, create_sweep, run_builtin_trial, sweep_spec

    sweep_id = create_sweep({**spec, "name": name}, project="bench", store=store)
    parsed = sweep_spec(store, sweep_id)
    start = time.perf_counter()
    for params in trials:
        run_id = store.add_trial(sweep_id, params, None, params, project="bench", run_cap=None)
        with Heartbeat(store, run_id):
            run_builtin_trial(store, Trial(sweep_id, run_id, params, parsed))
    return sweep_id, time.perf_counter() - start


def sweep_result(store, sweep_id: str, seconds: float) -> dict:
    """Per run: epochs trained, best val_acc, status; and the sweep's totals."""
    runs = []
    for trial in store.sweep_trials(sweep_id):
        frame = store.metrics_frame(trial["run_id"])
        best = float(frame["val_acc"].max()) if "val_acc" in frame else None
        runs.append({"run_id": trial["run_id"], "status": trial["status"].value, "epochs": len(frame),
                     "best_val_acc": best})
    accs = [r["best_val_acc"] for r in runs if r["best_val_acc"] is not None]
    return {"sweep_id": sweep_id, "seconds": seconds, "total_epochs": sum(r["epochs"] for r in runs),
            "best_val_acc": max(accs) if accs else None, "pruned": sum(r["status"] == "pruned" for r in runs),
            "runs": runs}


def compare_draw(store, args, seed: int) -> dict:
    """One draw of configurations, trained as a full sweep and as a hyperband sweep."""
    trials = draw_trials(search_spec(args.epochs, None, args.metric), args.runs, seed)
    out = {"trials": trials}
    for name, eta in (("full", None), ("hyperband", args.eta)):
        say(f"(a) seed {seed}, {name}: {args.runs} runs x up to {args.epochs} epochs...", args.json)
        spec = search_spec(args.epochs, eta, args.metric, args.strict, args.min_iter)
        sweep_id, seconds = run_trials(store, spec, trials, f"bench-{name}-{seed}")
        out[name] = sweep_result(store, sweep_id, seconds)
    return {**out, **verdicts(out["full"]["best_val_acc"] - out["hyperband"]["best_val_acc"],
                              out["hyperband"]["total_epochs"], out["full"]["total_epochs"])}


def verdicts(acc_lost: float, hyperband_epochs: int, full_epochs: int) -> dict:
    points, fraction = acc_lost * 100, hyperband_epochs / full_epochs
    return {"acc_points_lost": points, "epoch_fraction": fraction,
            "met": {"best_acc": points <= TARGETS["best_acc_points"], "epochs": fraction <= TARGETS["epoch_fraction"]}}


def bench_hyperband(store, args) -> dict:
    """Every seed's draw; and the pooled figures (worst accuracy loss, epochs summed over draws)."""
    draws = {seed: compare_draw(store, args, seed) for seed in args.seeds}
    worst = max(d["acc_points_lost"] for d in draws.values()) / 100
    pooled = verdicts(worst, sum(d["hyperband"]["total_epochs"] for d in draws.values()),
                      sum(d["full"]["total_epochs"] for d in draws.values()))
    return {"eta": args.eta, "min_iter": args.min_iter, "draws": draws, "pooled": pooled}


# -- (b) throughput: 1 agent process vs 2 -----------------------------------------------------------

def grid_spec(epochs: int) -> dict:
    spec = json.loads(json.dumps(GRID))
    spec["parameters"]["epochs"] = {"value": epochs}
    return spec


AGENT_ARMS = {                       # name: extra arguments of `python -m core sweep agent ID`
    "1 agent": ["--processes", "1"],                    # the CLI's default: torch's own thread count
    "1 agent, 1 thread": ["--processes", "1", "--threads", "1"],
    "2 agents": ["--processes", "2"],                   # the CLI gives each cpu_count // 2 threads
}


def run_agents(store, epochs: int, arm: str, log: Path) -> dict:
    """A fresh grid sweep trained by `python -m core sweep agent ID ...`; its timings."""
    from core.sweeps import create_sweep

    sweep_id = create_sweep(grid_spec(epochs), project="bench", store=store)
    command = [sys.executable, "-m", "core", "sweep", "agent", sweep_id, *AGENT_ARMS[arm]]
    start = time.perf_counter()
    with open(log, "ab") as out:
        code = subprocess.run(command, cwd=REPO, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    runs = store.list_runs(sweep_id=sweep_id)
    span = max(r.ended_at or 0 for r in runs) - min(r.created_at for r in runs) if runs else float("nan")
    finished = sum(r.status.value == "finished" for r in runs)
    return {"sweep_id": sweep_id, "exit_code": code, "seconds": seconds, "span_s": span, "runs": len(runs),
            "finished": finished, "runs_per_hour": finished / seconds * 3600}


def medians(samples: list[dict]) -> dict:
    return {key: statistics.median(s[key] for s in samples) for key in ("seconds", "span_s", "runs_per_hour")}


def bench_throughput(store, args, scratch: Path) -> dict:
    samples: dict[str, list[dict]] = {arm: [] for arm in AGENT_ARMS}
    for rep in range(args.reps):
        for arm in AGENT_ARMS if rep % 2 == 0 else reversed(AGENT_ARMS):
            say(f"(b) rep {rep + 1}/{args.reps}: {arm}...", args.json)
            samples[arm].append(run_agents(store, args.grid_epochs, arm, scratch / "agents.log"))
    med = {arm: medians(v) for arm, v in samples.items()}
    one, two = med["1 agent"], med["2 agents"]
    speedup = two["runs_per_hour"] / one["runs_per_hour"]
    return {"samples": samples, "median": med, "speedup": speedup, "span_speedup": one["span_s"] / two["span_s"],
            "speedup_vs_1_thread": two["runs_per_hour"] / med["1 agent, 1 thread"]["runs_per_hour"],
            "met": speedup >= TARGETS["agents_speedup"]}


# -- output ----------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report_draw(seed: int, r: dict, as_json: bool) -> None:
    say(f"(a) seed {seed}:", as_json)
    for name in ("full", "hyperband"):
        s = r[name]
        say(f"  {name:<10} best val_acc {s['best_val_acc']:.4f}  epochs trained {s['total_epochs']:4d}  "
            f"pruned runs {s['pruned']:2d}  wall {s['seconds']:6.1f} s", as_json)
        say("    epochs per run: " + " ".join(str(x["epochs"]) for x in s["runs"]), as_json)
    say(f"  best val_acc lost {r['acc_points_lost']:.2f} points: {verdict(r['met']['best_acc'])}; epochs trained "
        f"{r['epoch_fraction']:.2f} of the full sweep's: {verdict(r['met']['epochs'])}", as_json)


def report_hyperband(r: dict, as_json: bool) -> None:
    for seed, draw in r["draws"].items():
        report_draw(seed, draw, as_json)
    p = r["pooled"]
    say(f"(a) all {len(r['draws'])} draws (hyperband min_iter {r['min_iter']}, eta {r['eta']:g}): "
        f"worst best-val_acc loss "
        f"{p['acc_points_lost']:.2f} points (target <= {TARGETS['best_acc_points']}): {verdict(p['met']['best_acc'])}; "
        f"epochs trained {p['epoch_fraction']:.2f} of the full sweeps' (target <= {TARGETS['epoch_fraction']}): "
        f"{verdict(p['met']['epochs'])}", as_json)


def report_throughput(r: dict, as_json: bool) -> None:
    for arm in AGENT_ARMS:
        each = ", ".join(f"{s['seconds']:.1f} s ({s['finished']}/{s['runs']} finished)" for s in r["samples"][arm])
        m = r["median"][arm]
        say(f"  {arm:<18} median {m['seconds']:5.1f} s = {m['runs_per_hour']:5.0f} runs/h; first trial to "
            f"last end {m['span_s']:5.1f} s  [{each}]", as_json)
    say(f"  2 agents / 1 agent: {r['speedup']:.2f}x runs per hour ({r['span_speedup']:.2f}x without start-up; "
        f"{r['speedup_vs_1_thread']:.2f}x against 1 agent on 1 thread); target >= {TARGETS['agents_speedup']}: "
        f"{'met' if r['met'] else 'NOT met'}", as_json)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--runs", type=int, default=24, help="configurations in part (a) [24]")
    parser.add_argument("--epochs", type=int, default=18, help="epochs per run in part (a) [18]")
    parser.add_argument("--metric", choices=("val_acc", "val_loss"), default="val_acc",
                        help="the sweep metric hyperband judges in part (a) [val_acc]")
    parser.add_argument("--strict", action="store_true", help="hyperband judges a run's value at the bracket, "
                        "not its best so far")
    parser.add_argument("--eta", type=float, default=3, help="hyperband eta in part (a) [3]")
    parser.add_argument("--min-iter", type=int, default=2, help="hyperband min_iter in part (a) [2]")
    parser.add_argument("--seeds", type=lambda text: [int(x) for x in text.split(",")], default=list(range(8)),
                        help="seeds of the configurations' draws, comma-separated [0-7]")
    parser.add_argument("--grid-epochs", type=int, default=15, help="epochs per run in part (b) [15]")
    parser.add_argument("--reps", type=int, default=2, help="repetitions per side in part (b) [2]")
    parser.add_argument("--skip-hyperband", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    result: dict = {"targets": TARGETS, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-sweeps-") as home:
        os.environ["LAB_HOME"] = home                      # before any store is opened; agents inherit it
        os.environ.pop("LAB_STORE", None)
        from core.tracker import Store

        store = Store()
        if not args.skip_hyperband:
            result["hyperband"] = bench_hyperband(store, args)
            report_hyperband(result["hyperband"], args.json)
        if not args.skip_throughput:
            result["throughput"] = bench_throughput(store, args, Path(home))
            report_throughput(result["throughput"], args.json)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
