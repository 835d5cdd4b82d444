"""`python -m core`: train, predict and list runs from a shell.

    python -m core train --dataset digits --model mlp --epochs 20 [--json]
    python -m core predict RUN_ID 24 [--json]
    python -m core runs [--json]
    python -m core resume RUN_ID [--json]
    python -m core sweep create sweep.yaml          # prints the sweep id
    python -m core sweep agent SWEEP_ID --count 8 [--processes 2]
    python -m core sweep list [--json]              # state, runs and best value of each sweep
    python -m core sweep stop SWEEP_ID              # no new trials; running ones asked to stop

Every config field is a flag (`--batch-size 64`, `--hidden 32,16`, `--lr-table 3:1e-4,6:1e-5`).
Bad input exits with code 2 and one line on stderr saying what was wrong, before any run exists.

A CLI run has no supervisor: when its process is killed (SIGKILL, power loss) the run stays
`running`. `runs` and `resume` first mark such runs `crashed` (see `mark_dead_runs`), so a killed
run can be resumed right away.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Sequence

from core.config import ConfigError, TrainConfig

EXIT_BAD_INPUT = 2
DEAD_PROCESS_SILENCE_S = 5.0   # a running run this silent whose process on this machine is gone has crashed


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (and exit 2, as argparse does)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see `{self.prog} --help`)\n")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; values are parsed and checked by the config itself."""
    group = parser.add_argument_group("training config (defaults in brackets)")
    for name, info in TrainConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = info.get_default(call_default_factory=True)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        if info.annotation is bool:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                               help=f"{info.description} [{shown}]")
        else:
            group.add_argument(flag, dest=name, metavar=name.upper(), default=None,
                               help=f"{info.description} [{shown}]")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m core", description="Torch Lab from the shell.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    train = commands.add_parser("train", help="train a model and record the run")
    add_config_flags(train)
    train.add_argument("--name", help="run name (a label; any text)")
    train.add_argument("--project", default="default", help="project the run belongs to [default]")
    train.add_argument("--json", action="store_true", help="print one JSON object per line")
    resume = commands.add_parser("resume", help="continue a stopped or crashed run from its last epoch")
    resume.add_argument("run_id")
    resume.add_argument("--json", action="store_true")
    predict = commands.add_parser("predict", help="predict with a run's best checkpoint")
    predict.add_argument("run_id")
    predict.add_argument("input", help="a number, a point x,y, or an image path")
    predict.add_argument("--json", action="store_true")
    runs = commands.add_parser("runs", help="list recorded runs")
    runs.add_argument("--project")
    runs.add_argument("--json", action="store_true")
    commands.add_parser("datasets", help="list dataset and model names")
    sweep = commands.add_parser("sweep", help="create a sweep or run agents for it")
    sweep_commands = sweep.add_subparsers(dest="sweep_command", required=True, parser_class=OneLineParser)
    create = sweep_commands.add_parser("create", help="create a sweep from a W&B sweep YAML/JSON file")
    create.add_argument("file")
    create.add_argument("--project")
    agent = sweep_commands.add_parser("agent", help="run trials of a sweep with the built-in trainer")
    agent.add_argument("sweep_id")
    agent.add_argument("--count", type=int, help="trials per agent (default: until the sweep ends)")
    agent.add_argument("--processes", type=int, default=1, help="agents to start; torch threads are split")
    agent.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    listing = sweep_commands.add_parser("list", help="list sweeps: state, runs and the best value so far")
    listing.add_argument("--json", action="store_true", help="one JSON object per sweep")
    stop = sweep_commands.add_parser("stop", help="stop a sweep: no new trials, its running runs asked to stop")
    stop.add_argument("sweep_id")
    worker = commands.add_parser("worker", help="train runs queued from the dashboard")
    worker.add_argument("--slots", type=int, default=2, help="runs trained at once [2]")
    worker.add_argument("--parent-pid", type=int, help="exit when this process is no longer the parent")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    given = {name: getattr(args, name) for name in TrainConfig.model_fields
             if getattr(args, name, None) is not None}
    for name, value in given.items():
        if isinstance(value, str) and value.lower() in ("none", "null") and name != "dataset":
            given[name] = None
    return TrainConfig(**given)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.errors import USER_ERRORS

    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:                          # e.g. a full disk: the run is already marked failed
        print(f"error: {exc}", file=sys.stderr)
        return 1


def cmd_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from core.paths import data_root, lab_home

    lab_home(), data_root(config.data_root)         # an unusable folder fails fast, before torch loads
    refuse_early_data_problem(config)
    from core.runs import environment, prepare_data
    from core.tracker import Store

    data = prepare_data(config)                     # bad data fails here, before a run exists
    store = Store()
    run_id = store.create_run(config.to_dict(), name=args.name, project=args.project, source="cli",
                              environment=environment())
    return run_and_print(store, run_id, config, data, args.json, resume=False)


def refuse_early_data_problem(config: TrainConfig) -> None:
    """A DataError for data mistakes that show without loading anything (a cnn on points, missing
    MNIST files), raised before torch's import: 0.3-0.4 s to answer instead of 5-8 s."""
    from core.datacheck import early_data_problem
    from core.errors import DataError

    problem = early_data_problem(config)
    if problem:
        raise DataError(problem)


def cmd_resume(args: argparse.Namespace) -> int:
    from core.tracker import Store

    store = Store()
    run = store.get_run(args.run_id)
    mark_dead_runs(store, [run])
    stored = TrainConfig.from_dict(run.config)
    refuse_early_data_problem(stored)
    from core.runs import prepare_data, reopen_for_resume

    data = prepare_data(stored)                     # bad data fails before the run is reopened
    config = reopen_for_resume(store, args.run_id)
    store.set_progress(args.run_id, {"pid": os.getpid()})   # the run's process is now this one
    return run_and_print(store, args.run_id, config, data, args.json, resume=True)


def mark_dead_runs(store, runs) -> None:
    """Mark `crashed` the runs whose training process died without ending them: any run silent for
    the worker's heartbeat timeout, and, among `runs`, one whose process on this machine is gone."""
    from core.status import RunStatus
    from core.worker import HEARTBEAT_TIMEOUT_S

    store.mark_stale_as_crashed(HEARTBEAT_TIMEOUT_S)
    for run in runs:
        pid = dead_process(run, time.time())
        if pid is not None:
            store.finish_run(run.run_id, RunStatus.CRASHED,
                             f"its training process (pid {pid}) ended without finishing the run")


def dead_process(run, now: float) -> int | None:
    """The pid of a `running` run's training process when that process, on this machine, no longer
    exists and the run has been silent for DEAD_PROCESS_SILENCE_S; None otherwise. A live process
    writes its heartbeat several times a second, so the silence rules out a run just claimed or
    resumed by a new process that has not yet written its own pid."""
    from core.status import RunStatus

    pid = (run.progress or {}).get("pid")
    if run.status is not RunStatus.RUNNING or not isinstance(pid, int) or pid <= 0:
        return None
    if (run.environment or {}).get("host") != platform.node():
        return None
    if run.heartbeat_at is None or now - run.heartbeat_at < DEAD_PROCESS_SILENCE_S:
        return None
    try:
        os.kill(pid, 0)                             # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return pid
    except OSError:                                 # it exists but belongs to another user
        return None
    return None


def run_and_print(store, run_id: str, config: TrainConfig, data, as_json: bool, resume: bool) -> int:
    from core.runs import train_tracked
    from core.worker import StoreControl

    out = JsonLines() if as_json else HumanLines(run_id, config)
    control = StoreControl(store, run_id)           # the dashboard can stop or adjust CLI runs too
    outcome = yield_all(train_tracked(config, store, run_id, control=control, data=data, record_steps=False,
                                      resume=resume), out, run_id)
    out.final(run_id, outcome)
    return 0


def yield_all(generator, out, run_id: str):
    """Drive a training generator, printing each epoch; return its Outcome."""
    while True:
        try:
            metrics = next(generator)
        except StopIteration as stop:
            return stop.value
        out.epoch(run_id, metrics)


class JsonLines:
    def epoch(self, run_id: str, m) -> None:
        row = {"run_id": run_id, **{k: v for k, v in m.to_dict().items() if k not in ("step_losses",)}}
        print(json.dumps(row), flush=True)

    def final(self, run_id: str, outcome) -> None:
        print(json.dumps({"run_id": run_id, "status": outcome.status.value, "reason": outcome.reason,
                          "best_val_acc": outcome.best_val_acc, "best_epoch": outcome.best_epoch,
                          "checkpoint": outcome.checkpoint}), flush=True)


class HumanLines:
    def __init__(self, run_id: str, config: TrainConfig) -> None:
        print(f"run {run_id}: {config.model} on {config.dataset}, {config.epochs} epochs", flush=True)

    def epoch(self, run_id: str, m) -> None:
        best = " *" if m.is_best else ""
        print(f"epoch {m.epoch:>3}/{m.num_epochs}  train loss {m.train_loss:.4f} acc {m.train_acc:6.2%}  "
              f"val loss {m.val_loss:.4f} acc {m.val_acc:6.2%}  lr {m.lr:.3g}  {m.seconds:.2f}s "
              f"({m.samples_per_s:,.0f} samples/s){best}", flush=True)

    def final(self, run_id: str, outcome) -> None:
        acc = "n/a" if outcome.best_val_acc is None else f"{outcome.best_val_acc:.2%}"
        print(f"run {run_id} {outcome.status.value}: {outcome.reason}; best val acc {acc} "
              f"(epoch {outcome.best_epoch}); checkpoint {outcome.checkpoint}", flush=True)


def cmd_predict(args: argparse.Namespace) -> int:
    from core.tracker import Store

    store = Store()
    store.get_run(args.run_id)              # an unknown id is refused before torch is imported (5 s)
    from core.predict import Predictor, parse_cli_input

    predictor = Predictor.from_folder(store.run_folder(args.run_id))
    prediction = predictor.predict(parse_cli_input(args.input, predictor.info))
    if args.json:
        print(json.dumps(prediction.to_dict(args.run_id)))
    else:
        probs = ", ".join(f"{name}: {p:.3f}" for name, p in zip(predictor.info.class_names,
                                                                prediction.probabilities))
        print(f"{args.input} -> {prediction.label}  ({probs})")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from core.tracker import Store

    store = Store()
    mark_dead_runs(store, store.list_runs(project=args.project))
    for run in store.list_runs(project=args.project):
        if args.json:
            keys = ("run_id", "name", "project", "status", "config", "summary")
            print(json.dumps({k: v for k, v in run.to_dict().items() if k in keys}))
        else:
            acc = run.summary.get("best_val_acc")
            acc_text = "-" if acc is None else f"{acc:.2%}"
            print(f"{run.run_id}  {run.status.value:<9} {run.config.get('dataset', '?'):<13} "
                  f"{run.config.get('model', '?'):<7} best val acc {acc_text:>7}  {run.name}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from core.registry import DATASET_NAMES, MODEL_NAMES

    print("datasets: " + ", ".join(DATASET_NAMES))
    print("models:   " + ", ".join(MODEL_NAMES))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core import sweeps
    from core.sweeplint import lint
    from core.sweepspec import SweepConfigError, load_spec
    from core.sweeptrainer import trainer_problems
    from core.tracker import Store

    try:
        if args.sweep_command == "create":
            path = Path(args.file)
            if not path.is_file():
                raise SweepConfigError(f"no sweep file at {path}")
            spec = load_spec(path)
            error, warnings = trainer_problems(spec)       # `sweep agent` runs the built-in trainer
            if error:
                raise SweepConfigError(error)
            for warning in [*lint(spec), *warnings]:
                print(f"warning: {warning}", file=sys.stderr)
            print(sweeps.create_sweep(path, project=args.project))
            return 0
        if args.sweep_command == "list":
            return list_sweeps(args)
        if args.sweep_command == "stop":
            asked = sweeps.stop_sweep_runs(Store(), args.sweep_id)
            print(f"sweep {args.sweep_id} stopped; " + (f"asked {len(asked)} running run(s) to stop: "
                                                        f"{', '.join(asked)}" if asked else "no run was training"))
            return 0
        return run_agents(args)
    except (SweepConfigError, LookupError) as exc:
        print(f"error: {str(exc).strip(chr(39))}", file=sys.stderr)
        return EXIT_BAD_INPUT


def list_sweeps(args: argparse.Namespace) -> int:
    from core.sweepviz import sweep_overview
    from core.tracker import Store

    store = Store()
    for sweep in store.list_sweeps():
        row = sweep_overview(store, sweep["sweep_id"])
        if args.json:
            print(json.dumps(row))
            continue
        best = "-" if row["best_value"] is None else f"{row['best_value']:.4g} (run {row['best_run']})"
        metric = f"{row['goal']} {row['metric']}" if row["metric"] else "no metric"
        print(f"{row['sweep_id']}  {row['state']:<9} {row['method']:<6} {row['runs']:>4} runs  {metric}, "
              f"best {best}  {row['name'] or row['project']}")
    return 0


def run_agents(args: argparse.Namespace) -> int:
    """One agent in this process, or `--processes K` agent processes with torch threads split."""
    import os
    import subprocess

    from core import sweeps

    if args.count is not None and args.count < 1 or args.processes < 1:
        raise ConfigError("count and processes must be at least 1")
    if args.processes == 1:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        ran = sweeps.run_agent(args.sweep_id, count=args.count)
        print(json.dumps({"sweep_id": args.sweep_id, "runs": ran}))
        return 0
    threads = max(1, (os.cpu_count() or 1) // args.processes)
    command = [sys.executable, "-m", "core", "sweep", "agent", args.sweep_id, "--threads", str(threads)]
    command += ["--count", str(args.count)] if args.count else []
    agents = [subprocess.Popen(command) for _ in range(args.processes)]
    return max(agent.wait() for agent in agents)


def cmd_worker(args: argparse.Namespace) -> int:
    from core.worker import main as serve

    if args.slots < 1:
        raise ConfigError(f"slots: {args.slots} is not allowed: at least 1 run must be able to train")
    return serve(args.slots, args.parent_pid)


COMMANDS = {"train": cmd_train, "resume": cmd_resume, "sweep": cmd_sweep, "predict": cmd_predict, "runs": cmd_runs,
            "datasets": cmd_datasets, "worker": cmd_worker}

