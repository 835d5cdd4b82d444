"""core.wandb against W&B's contract: unknown names, init() arguments, resume="auto", dir=, config and
exit events, define_metric summaries."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import core.wandb as wandb
from core import wandb_init
from core.status import RunStatus
from core.tracker import Store
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def clean_wandb(monkeypatch):
    for name in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(wandb_init, "_warned_args", set())
    yield
    for open_run in list(wandb._active):
        open_run.finish()


def events_of(store, run_id, kinds=("config", "resume", "end")):
    return [(e["kind"], e["step"], e["data"]) for e in store.event_rows(run_id) if e["kind"] in kinds]


# -- unknown names -----------------------------------------------------------------------------------

def test_unknown_attributes_of_run_artifact_image_and_table_name_what_is_supported():
    run = wandb.init()
    cases = ((run, "lgo", r"Run has no attribute 'lgo'; it supports: .*\bconfig\b.*\blog\b.*\bsummary\b"),
             (wandb.Artifact("data", "dataset"), "add_files",
              r"Artifact has no attribute 'add_files'; it supports: add_dir, add_file, .*download"),
             (wandb.Image(np.zeros((2, 2))), "to_numpy",
              r"Image has no attribute 'to_numpy'; it supports: .*caption.*png"),
             (wandb.Table(columns=["a"]), "add_row",
              r"Table has no attribute 'add_row'; it supports: add_column, add_data"))
    for obj, name, message in cases:
        with pytest.raises(AttributeError, match=message):
            getattr(obj, name)
        assert not hasattr(obj, "__array_interface__")          # probes by numpy and pandas still get False
    assert run.resumed is False and hasattr(run, "summary")


def test_init_refuses_unknown_arguments_like_wandb_and_warns_once_for_ignored_ones():
    with pytest.raises(TypeError, match=r"init\(\) got an unexpected keyword argument 'projct'; it takes: .*project"):
        wandb.init(projct="mnist")
    assert wandb.run is None
    with pytest.warns(UserWarning, match=r"init\(entity=...\) is ignored offline: there are no W&B teams"):
        wandb.init(entity="team", sync_tensorboard=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wandb.init(entity="team", settings=None)            # warned once already; None asks for nothing
    assert [str(w.message) for w in caught] == []
    with pytest.raises(wandb.Error, match=r"init\(fork_from='abc\?_step=3'\): forking a run is not supported"):
        wandb.init(fork_from="abc?_step=3")
    wandb.init(config={"lr": 0.1}, allow_val_change=True)
    wandb.config.update({"lr": 0.2})                         # allowed for the whole run by init()
    assert wandb.config.lr == 0.2


# -- resume ------------------------------------------------------------------------------------------

def test_resume_auto_continues_the_newest_unfinished_run_of_the_project_from_this_dir(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    store = Store()
    with pytest.raises(RuntimeError):
        with wandb.init(project="p", resume="auto") as first:
            wandb.log({"loss": 1.0})
            raise RuntimeError("out of memory")
    with pytest.raises(RuntimeError):
        with wandb.init(project="other", resume="auto"):
            raise RuntimeError("another project")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert not wandb.init(project="p", resume="auto").resumed          # another dir: a new run
    wandb.finish()
    monkeypatch.chdir(tmp_path / "here")
    again = wandb.init(project="p", resume="auto")
    assert (again.id, again.resumed, again.step) == (first.id, True, 1)
    assert store.get_run(first.id).status is RunStatus.RUNNING
    live = wandb.init(project="p", resume=True, reinit="create_new")   # the running run belongs to a live process
    assert live.id != first.id and not live.resumed
    live.finish()
    again.log({"loss": 0.5})
    again.finish()
    assert [(r["step"], r["value"]) for r in store.metric_rows(first.id, ["loss"])] == [(0, 1.0), (1, 0.5)]
    assert events_of(store, first.id, ("resume",)) == [("resume", 1, {"step": 1})]
    fresh = wandb.init(project="p", resume="auto")                     # the newest run of p finished
    assert fresh.id not in (first.id, live.id) and not fresh.resumed


@pytest.mark.slow
def test_resume_auto_takes_a_silent_running_run_whose_process_died(lab_home, tmp_path, monkeypatch):
    script = textwrap.dedent("""
        import os
        import core.wandb as wandb
        run = wandb.init(project="p", resume="auto")
        wandb.log({"loss": 2.0})
        print(run.id, flush=True)
        os._exit(9)                                  # killed: no finish, no exit hooks
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"LAB_HOME": str(lab_home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    dead = done.stdout.split()[0]
    monkeypatch.chdir(tmp_path)
    store = Store()
    assert store.get_run(dead).status is RunStatus.RUNNING
    live_looking = wandb.init(project="p", resume="auto")               # its heartbeat is still recent
    assert live_looking.id != dead
    live_looking.finish()
    store.delete_run(live_looking.id)
    monkeypatch.setattr(wandb, "SILENT_S", 0.0)
    resumed = wandb.init(project="p", resume="auto")
    assert (resumed.id, resumed.resumed, resumed.step) == (dead, True, 1)


def test_resume_must_needs_a_stored_id_and_marks_the_run_resumed():
    with pytest.raises(wandb.Error, match=r"resume='must' needs id= of a stored run"):
        wandb.init(resume="must")
    with pytest.raises(wandb.Error, match=r"resume='must' needs the id of a stored run; 'nope' is not in the store"):
        wandb.init(id="nope", resume="must")
    assert wandb.init(id="kept").resumed is False
    wandb.finish()
    assert wandb.init(id="kept", resume="must").resumed is True


# -- dir ---------------------------------------------------------------------------------------------

def test_dir_holds_the_store_and_files_unless_lab_store_names_one(tmp_path, lab_home, monkeypatch):
    (tmp_path / "weights.bin").write_bytes(b"w")
    run = wandb.init(project="p", dir=tmp_path / "work")
    wandb.log({"loss": 1.0})
    wandb.log_artifact(str(tmp_path / "weights.bin"), type="model")
    assert run.dir == str(tmp_path / "work" / ".lab" / "runs" / run.id / "files")
    wandb.finish()
    in_dir = Store(f"sqlite:///{tmp_path / 'work' / '.lab' / 'lab.db'}", home=tmp_path / "work" / ".lab")
    assert in_dir.get_run(run.id).status is RunStatus.FINISHED
    assert in_dir.blob_path(in_dir.get_artifact("weights.bin").files[0][1]).is_file()
    assert not lab_home.exists()
    team = f"sqlite:///{tmp_path / 'team.db'}"
    monkeypatch.setenv("LAB_STORE", team)
    other = wandb.init(project="p", dir=tmp_path / "work")
    wandb.finish()
    assert Store(team).get_run(other.id).status is RunStatus.FINISHED
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match=r"init\(dir=.*a-file'\): .* is a file; pass a folder"):
        wandb.init(dir=str(tmp_path / "a-file"))


# -- events ------------------------------------------------------------------------------------------

def test_config_changes_after_init_and_the_exit_code_are_events():
    store = Store()
    run = wandb.init(config={"lr": 0.1})
    wandb.log({"loss": 1.0})
    wandb.config.update({"batch_size": 8})
    wandb.config.lr = 0.1                                       # the same value: no change, no event
    wandb.config.update({"lr": 0.2}, allow_val_change=True)
    with pytest.raises(TypeError, match=r"finish\(exit_code='1'\): the exit code must be a whole number"):
        run.finish(exit_code="1")
    run.finish(exit_code=3)
    assert events_of(store, run.id) == [("config", 1, {"field": "batch_size", "value": 8}),
                                        ("config", 1, {"field": "lr", "value": 0.2, "previous": 0.1}),
                                        ("end", 1, {"status": "failed", "reason": "exit code 3", "exit_code": 3})]
    record = store.get_run(run.id)
    assert record.status is RunStatus.FAILED and record.config == {"lr": 0.2, "batch_size": 8}
    ok = wandb.init()
    ok.finish(exit_code=0)
    assert events_of(store, ok.id) == [("end", 0, {"status": "finished", "reason": "finished by the script",
                                                   "exit_code": 0})]
    assert store.get_run(ok.id).status is RunStatus.FINISHED


# -- define_metric -----------------------------------------------------------------------------------

def test_define_metric_summaries_min_max_mean_best_last_and_none():
    store = Store()
    run = wandb.init()
    wandb.define_metric("loss", summary="min")
    wandb.define_metric("loss", summary="last")                 # adds to the first definition, as in W&B
    run.define_metric("acc", summary="max,mean", step_metric="epoch")
    wandb.define_metric("val/*", summary="best", goal="minimize")
    wandb.define_metric("noise", summary="none")
    for loss, acc in ((0.5, 0.25), (0.25, 0.75), (0.375, 0.5)):
        wandb.log({"loss": loss, "acc": acc, "val/loss": loss + 1, "noise": 3.0, "lr": loss / 10})
    expected = {"loss": {"min": 0.25, "last": 0.375}, "acc": {"max": 0.75, "mean": 0.5},
                "val/loss": {"best": 1.25}, "lr": 0.0375}
    assert store.get_run(run.id).summary == expected == run.summary.as_dict()
    for bad, message in (({"summary": "median"}, r"unknown kind median; choose from: min, max, mean, best, last"),
                         ({"summary": "best"}, r"summary='best'\) needs goal='minimize' or 'maximize'"),
                         ({"summary": "max", "goal": "up"}, r"goal='up'\): choose one of: minimize, maximize")):
        with pytest.raises(ValueError, match=message):
            wandb.define_metric("x", **bad)
    wandb.finish()
    resumed = wandb.init(id=run.id, resume="must")
    resumed.define_metric("acc", summary="max,mean")
    wandb.log({"acc": 0.5})                                      # aggregates include the values logged before
    assert store.get_run(run.id).summary["acc"] == {"max": 0.75, "mean": 0.5}
