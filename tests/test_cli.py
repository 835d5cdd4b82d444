"""The CLI as a user runs it: real processes, a real store under a temporary LAB_HOME."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.slow
def test_train_json_lines_then_runs_and_predict():
    done = cli("train", "--dataset", "threshold", "--batch-size", "1", "--epochs", "10", "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    epochs, final = lines[:-1], lines[-1]
    assert [e["epoch"] for e in epochs] == list(range(1, 11))
    for key in ("run_id", "epoch", "train_loss", "val_loss", "train_acc", "val_acc", "lr", "seconds",
                "samples_per_s"):
        assert key in epochs[0]
    assert final["status"] == "finished" and final["checkpoint"].endswith("best.safetensors")
    run_id = final["run_id"]
    listed = [json.loads(line) for line in cli("runs", "--json").stdout.splitlines()]
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["config"]["batch_size"] == 1 and listed[0]["status"] == "finished"
    assert listed[0]["summary"]["best_val_acc"] == final["best_val_acc"]
    high = json.loads(cli("predict", run_id, "24", "--json").stdout)
    low = json.loads(cli("predict", run_id, "3.14", "--json").stdout)
    assert (high["label"], low["label"]) == ("> 8", "<= 8")
    assert set(high) == {"run_id", "label", "class_index", "probabilities"}
    assert sum(high["probabilities"]) == pytest.approx(1.0)


@pytest.mark.parametrize("args,fragment", [
    (["train", "--lr", "abc"], "lr: 'abc'"),
    (["train", "--lr", "0"], "lr: '0'"),
    (["train", "--lr", "1e-400"], "lr: '1e-400'"),
    (["train", "--batch-size", "2.5"], "batch_size: '2.5'"),
    (["train", "--batch-size", "0"], "batch_size: '0'"),
    (["train", "--epochs", "0"], "epochs: '0'"),
    (["train", "--batch-size", "100000"], "larger than the 1438 training samples"),
    (["train", "--dataset", "nope"], "choose one of: threshold"),
    (["train", "--dataset", "moons", "--model", "cnn"], "needs an image dataset"),
    (["train", "--what", "1"], "unrecognized arguments"),
    (["train", "--dataset", "mnist"], "MNIST/raw"),
    (["predict", "zzzzzzzz", "1"], "no run 'zzzzzzzz'"),
    (["predict", "../../etc", "1"], "no run"),
    (["bogus"], "invalid choice"),
])
def test_bad_input_exits_2_with_one_line_and_creates_no_run(args, fragment, lab_home):
    done = cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert cli("runs", "--json").stdout == ""


def test_human_output_and_help():
    done = cli("train", "--dataset", "moons", "--epochs", "2", "--num-samples", "200", "--name", "<b>x</b>")
    assert done.returncode == 0, done.stderr
    assert "epoch   2/2" in done.stdout and "finished" in done.stdout
    assert "<b>x</b>" in cli("runs").stdout
    help_text = cli("train", "--help").stdout
    for flag in ("--batch-size", "--lr-table", "--grad-clip", "--width", "--dropout", "--hidden", "--device"):
        assert flag in help_text


@pytest.mark.slow
def test_resume_a_crashed_run_as_the_same_run():
    import json as _json
    import signal

    from core.tracker import Store

    started = subprocess.Popen([sys.executable, "-m", "core", "train", "--dataset", "digits", "--epochs", "60",
                                "--batch-size", "16", "--json"], cwd=REPO, stdout=subprocess.PIPE, text=True,
                               env=os.environ.copy())
    first_lines = [_json.loads(started.stdout.readline()) for _ in range(3)]      # three epochs done
    started.send_signal(signal.SIGKILL)
    started.wait()
    run_id = first_lines[0]["run_id"]
    store = Store()
    assert store.get_run(run_id).status.value == "running"                      # nobody marked it yet
    assert store.mark_stale_as_crashed(-1) == [run_id]
    assert cli("resume", run_id, "--epochs", "5").returncode == 2                # resume takes no config flags
    done = cli("resume", run_id, "--json")
    assert done.returncode == 0, done.stderr
    epochs = [_json.loads(line)["epoch"] for line in done.stdout.splitlines()[:-1]]
    assert 3 <= epochs[0] <= 4 and epochs[-1] == 60                             # at most one epoch redone
    assert store.metrics_frame(run_id)["epoch"].tolist() == list(range(1, 61))   # each epoch once
    assert len(store.metric_rows(run_id, ["val_acc"])) == 60
    assert store.get_run(run_id).status.value == "finished"
    assert cli("resume", run_id).returncode == 2                                  # finished runs stay final


def start_training(epochs: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", "train", "--dataset", "digits", "--epochs", str(epochs),
                             "--batch-size", "32", "--json"], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())


@pytest.mark.slow
def test_a_killed_cli_run_is_marked_crashed_by_resume_and_runs_then_resumes():
    import signal
    import time

    from core.cli import DEAD_PROCESS_SILENCE_S
    from core.tracker import Store

    epochs = 60              # about 3 s of training: neither run can finish while the test kills the other
    processes = [start_training(epochs) for _ in range(2)]
    run_ids = []
    for process in processes:
        first, second = (json.loads(process.stdout.readline()) for _ in range(2))
        assert second["epoch"] == 2                                 # so epoch 1's resumable state is saved
        process.send_signal(signal.SIGKILL)
        process.wait()
        run_ids.append(first["run_id"])
    store = Store()
    resumed, listed = run_ids
    for run_id in run_ids:                                           # let the dead runs fall silent
        while time.time() - store.get_run(run_id).heartbeat_at <= DEAD_PROCESS_SILENCE_S:
            time.sleep(0.2)
        assert store.get_run(run_id).status.value == "running"
    done = cli("resume", resumed, "--json")                           # no manual marking in between
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["status"] == "finished"
    assert store.metrics_frame(resumed)["epoch"].tolist() == list(range(1, epochs + 1))   # all epochs, each once
    assert store.get_run(resumed).status.value == "finished"
    rows = {r["run_id"]: r for r in map(json.loads, cli("runs", "--json").stdout.splitlines())}
    assert rows[listed]["status"] == "crashed"                       # marked by `runs` (or, if slow, the 30 s rule)
    assert re.search("ended without finishing|no heartbeat", store.get_run(listed).reason)
    assert cli("resume", listed, "--json").returncode == 0


def test_dead_process_is_only_a_gone_process_of_a_silent_running_run_on_this_machine():
    import platform

    from core.cli import DEAD_PROCESS_SILENCE_S, dead_process
    from core.tracker import Store

    store = Store()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here, elsewhere = {"host": platform.node()}, {"host": platform.node() + "-other"}
    cases = {}
    for name, pid, environment in [("gone", gone.pid, here), ("alive", os.getpid(), here),
                                   ("other machine", gone.pid, elsewhere), ("no pid", None, here)]:
        run_id = store.create_run({}, environment=environment)
        if pid is not None:
            store.set_progress(run_id, {"pid": pid})
        cases[name] = store.get_run(run_id)
    later = max(run.heartbeat_at for run in cases.values()) + DEAD_PROCESS_SILENCE_S + 1
    assert dead_process(cases["gone"], later) == gone.pid
    assert dead_process(cases["gone"], cases["gone"].heartbeat_at + 1) is None    # not silent long enough
    assert dead_process(cases["alive"], later) is None
    assert dead_process(cases["other machine"], later) is None
    assert dead_process(cases["no pid"], later) is None


def test_runs_marks_only_the_run_whose_process_is_gone(capsys):
    import platform
    import time

    from core.cli import DEAD_PROCESS_SILENCE_S, main
    from core.tracker import Store

    store = Store()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    ids = {}
    for name, pid in [("gone", gone.pid), ("alive", os.getpid())]:
        ids[name] = store.create_run({}, environment={"host": platform.node()})
        store.set_progress(ids[name], {"pid": pid})
    while time.time() - store.get_run(ids["gone"]).heartbeat_at <= DEAD_PROCESS_SILENCE_S:
        time.sleep(0.2)
    assert main(["runs", "--json"]) == 0
    rows = {r["run_id"]: r["status"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows == {ids["gone"]: "crashed", ids["alive"]: "running"}
    assert store.get_run(ids["gone"]).reason == f"its training process (pid {gone.pid}) ended without finishing the run"
