"""core.wandb: W&B scripts run against the store with W&B's semantics (steps, summary, resume...)."""

import argparse
import dataclasses
import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import core.wandb as wandb
from core.paths import UnsafePath
from core.status import RunStatus
from core.tracker import Store
from core.wandb_media import to_uint8
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def clean_wandb(monkeypatch):
    for name in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    yield
    for open_run in list(wandb._active):
        open_run.finish()


def steps_of(store, run_id, key):
    return [(r["step"], r["value"]) for r in store.metric_rows(run_id, [key])]


# -- before init, module surface -------------------------------------------------------------------

def test_calls_before_init_say_to_call_init_first():
    assert wandb.run is None
    for call, name in ((lambda: wandb.log({"a": 1}), "log"), (lambda: wandb.save("x"), "save"),
                       (lambda: wandb.log_artifact(wandb.Artifact("a", "b")), "log_artifact"),
                       (lambda: wandb.use_artifact("a:latest"), "use_artifact"),
                       (lambda: wandb.config.lr, "config"), (lambda: wandb.summary["x"], "summary"),
                       (lambda: wandb.define_metric("acc", summary="max"), "define_metric")):
        with pytest.raises(wandb.Error, match=rf"must call wandb.init\(\) before wandb.{name}"):
            call()
    wandb.finish()                                   # as in W&B: nothing to finish, nothing happens


def test_unknown_attribute_names_what_is_supported_and_noops_are_harmless():
    with pytest.raises(AttributeError, match=r"no 'Histogram'; it supports: Artifact, .*Table, .*log, .*use_artifact"):
        wandb.Histogram
    with pytest.raises(AttributeError, match="no 'plot'"):
        wandb.plot
    assert wandb.login(key="x", relogin=True) is True
    assert wandb.watch(torch.nn.Linear(1, 1), log="all", log_freq=10) is None
    assert wandb.unwatch() is None


# -- log, steps, summary -----------------------------------------------------------------------------

def test_summary_holds_the_last_logged_value_unless_set_explicitly():
    store = Store()
    run = wandb.init(project="p")
    for acc in (0.1, 0.4, 0.2):
        wandb.log({"acc": acc, "loss": 1 - acc})
    assert store.get_run(run.id).summary == {"acc": 0.2, "loss": 0.8}
    wandb.summary["acc"] = 0.4                       # explicit: the best, not the last
    run.summary.update({"best_epoch": 2})
    assert store.get_run(run.id).summary == {"acc": 0.4, "loss": 0.8, "best_epoch": 2}
    wandb.log({"acc": 0.3})                          # W&B: the later write wins
    wandb.finish()
    assert store.get_run(run.id).summary["acc"] == 0.3 and run.summary["best_epoch"] == 2


def test_step_counter_commit_false_merges_and_explicit_steps():
    store = Store()
    run = wandb.init()
    wandb.log({"a": 1})                                              # step 0
    wandb.log({"b": 1}, commit=False)
    wandb.log({"b": 2, "c": 3}, commit=False)                        # same step, b replaced
    wandb.log({"a": 2})                                              # commits step 1: a, b, c
    assert run.step == 2
    wandb.log({"a": 5}, step=5)                                      # jump; with step=, commit defaults False
    wandb.log({"d": 7})                                              # merged into step 5, then committed
    with pytest.warns(UserWarning, match=r"step=3\) is ignored: the run is at step 6"):
        wandb.log({"a": 99}, step=3)
    wandb.log({"a": 8}, step=8, commit=True)
    wandb.log({"a": 9})
    wandb.finish()
    assert steps_of(store, run.id, "a") == [(0, 1), (1, 2), (5, 5), (8, 8), (9, 9)]
    assert steps_of(store, run.id, "b") == [(1, 2)] and steps_of(store, run.id, "c") == [(1, 3)]
    assert steps_of(store, run.id, "d") == [(5, 7)]


def test_pending_values_are_written_by_finish_and_epoch_fills_rows():
    store = Store()
    run = wandb.init()
    wandb.log({"epoch": 1, "val_acc": 0.5})
    wandb.log({"epoch": 2, "val_acc": np.float32(0.75), "n": np.int64(3), "t": torch.tensor(0.25),
               "ok": True, "group": {"x": 1.5}}, commit=False)
    wandb.finish()
    rows = {(r["key"], r["step"]): (r["value"], r["epoch"]) for r in store.metric_rows(run.id)}
    assert rows[("val_acc", 1)] == (0.75, 2) and rows[("t", 1)] == (0.25, 2) and rows[("ok", 1)] == (1.0, 2)
    assert rows[("group.x", 1)] == (1.5, 2) and rows[("n", 1)] == (3.0, 2)
    assert store.metrics_frame(run.id)["val_acc"].tolist() == [0.5, 0.75]
    assert store.get_run(run.id).summary["n"] == 3 and store.get_run(run.id).summary["ok"] is True


def test_unsupported_values_name_the_key_and_write_nothing():
    store = Store()
    run = wandb.init()
    with pytest.raises(TypeError, match=r"'hist' is a list; supported values: numbers.*wandb.Image"):
        wandb.log({"acc": 0.5, "hist": [1, 2, 3]})
    with pytest.raises(ValueError, match="whole number >= 0"):
        wandb.log({"acc": 0.5}, step=-1)
    wandb.log({"note": "lr halved"})
    wandb.finish()
    assert store.metric_rows(run.id) == []
    assert [(e["kind"], e["data"]) for e in store.event_rows(run.id)][0] == ("text", {"note": "lr halved"})


def test_log_after_finish_and_exit_codes():
    store = Store()
    run = wandb.init()
    run.finish(exit_code=3)
    run.finish()                                     # a second finish changes nothing
    assert store.get_run(run.id).status is RunStatus.FAILED and store.get_run(run.id).reason == "exit code 3"
    with pytest.raises(wandb.Error, match="has finished"):
        run.log({"a": 1})
    assert wandb.run is None


# -- config ------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Hyper:
    lr: float = 0.1
    layers: tuple = (32, 16)


def test_config_from_namespace_dataclass_and_pydantic_written_through():
    from core.config import TrainConfig

    store = Store()
    run = wandb.init(config=argparse.Namespace(lr=0.1, batch_size=64))
    assert wandb.config.lr == 0.1 and wandb.config["batch_size"] == 64 and "lr" in wandb.config
    assert sorted(wandb.config.keys()) == ["batch_size", "lr"] and dict(wandb.config.items())["lr"] == 0.1
    wandb.config.update(Hyper(lr=0.1))
    wandb.config.dropout = 0.2
    wandb.config["--momentum"] = 0.9                 # argparse-style names lose their dashes, as in W&B
    wandb.config.update(TrainConfig(dataset="moons", lr=0.1, batch_size=64).model_dump(include={"dataset"}))
    with pytest.raises(wandb.Error, match=r"'lr' is 0.1; to change it to 0.5 pass allow_val_change=True"):
        wandb.config.update({"lr": 0.5, "extra": 1})
    assert "extra" not in wandb.config               # a refused update changes nothing
    wandb.config.update({"lr": 0.5}, allow_val_change=True)
    with pytest.raises(AttributeError, match="config has no key 'nope'"):
        wandb.config.nope
    expected = {"lr": 0.5, "batch_size": 64, "layers": [32, 16], "dropout": 0.2, "momentum": 0.9,
                "dataset": "moons"}
    assert wandb.config.as_dict() == expected == store.get_run(run.id).config
    run2 = wandb.init(config=Hyper(lr=0.3))          # the previous run is finished first
    assert store.get_run(run.id).status is RunStatus.FINISHED
    assert store.get_run(run2.id).config == {"lr": 0.3, "layers": [32, 16]}
    wandb.init(config=TrainConfig(dataset="moons"))
    assert wandb.config.dataset == "moons" and wandb.config.hidden == [32, 16]
    with pytest.raises(TypeError, match="config must be a dict, argparse.Namespace"):
        wandb.init(config=42)
    assert wandb.run is not None                     # a bad config leaves the current run alone


def test_sweep_values_win_over_the_script_config_and_stay_locked():
    store = Store()
    trial = wandb.SweepTrial(sweep_id="sw1", values={"lr": 0.01}, project="sweeps")
    with wandb.sweep_trial(trial):
        run = wandb.init(project="mine", config={"lr": 0.1, "epochs": 3})
        with pytest.warns(UserWarning, match="'lr' is set by the sweep"):
            wandb.config.update({"lr": 0.5}, allow_val_change=True)
        wandb.finish()
    record = store.get_run(run.id)
    assert record.config == {"lr": 0.01, "epochs": 3} and record.sweep_id == "sw1"
    assert record.source == "sweep" and record.project == "sweeps" and trial.run_ids == [run.id]


# -- lifecycle -------------------------------------------------------------------------------------

def test_context_manager_finishes_or_fails_and_reraises():
    store = Store()
    with wandb.init(name="ok", tags=["a"], notes="n", group="g") as run:
        run.log({"a": 1})
    record = store.get_run(run.id)
    assert record.status is RunStatus.FINISHED and (record.name, record.tags, record.group) == ("ok", ("a",), "g")
    assert record.source == "script" and "torch" in record.environment and wandb.run is None
    with pytest.raises(ValueError, match="boom"):
        with wandb.init() as run:
            run.log({"a": 1})
            raise ValueError("boom\nsecond line")
    record = store.get_run(run.id)
    assert record.status is RunStatus.FAILED and record.reason == "ValueError: boom"
    assert steps_of(store, run.id, "a") == [(0, 1)] and wandb.run is None


def test_labels_are_settable_and_reinit_modes():
    store = Store()
    run = wandb.init(name="first")
    run.name, run.tags, run.notes = "renamed", ("x", "y"), "why"
    record = store.get_run(run.id)
    assert (record.name, record.tags, record.notes) == ("renamed", ("x", "y"), "why")
    assert wandb.init(reinit="return_previous") is run
    other = wandb.init(reinit="create_new")
    assert wandb.run is other and store.get_run(run.id).status is RunStatus.RUNNING
    run.finish()
    assert wandb.run is other                        # finishing another run leaves the current one


def test_resume_modes_follow_wandb():
    store = Store()
    with pytest.raises(wandb.Error, match="resume='must' needs the id of a stored run; 'abc' is not"):
        wandb.init(id="abc", resume="must")
    run = wandb.init(id="abc", resume="never", config={"lr": 0.1, "epochs": 2})
    wandb.log({"loss": 1.0})
    wandb.log({"loss": 0.5}, step=4)
    wandb.finish()
    with pytest.raises(wandb.Error, match="resume='never' but run 'abc' already exists"):
        wandb.init(id="abc", resume="never")
    with pytest.raises(wandb.Error, match="'abc' already exists; pass resume='allow' or 'must'"):
        wandb.init(id="abc")
    run = wandb.init(id="abc", resume="must", config={"epochs": 3}, name="again")
    record = store.get_run("abc")
    assert record.status is RunStatus.RUNNING and record.config == {"lr": 0.1, "epochs": 3}
    assert record.name == "again" and run.step == 5 and run.summary["loss"] == 0.5
    wandb.log({"loss": 0.25})
    wandb.finish()
    assert steps_of(store, "abc", "loss") == [(0, 1.0), (4, 0.5), (5, 0.25)]
    assert store.get_run("abc").status is RunStatus.FINISHED
    for mode in ("allow", "auto", True):
        assert wandb.init(id="abc", resume=mode).step == 6
        wandb.finish()
    assert wandb.init(id="fresh", resume="allow").step == 0 and store.get_run("fresh").config == {}
    wandb.finish()
    with pytest.raises(ValueError, match="unknown resume 'sometimes'"):
        wandb.init(resume="sometimes")


def test_wandb_style_ids_are_refused_with_the_rule():
    with pytest.raises(ValueError, match=r"id='Run_1x' cannot be used: run ids here are 1-32 characters of a-z"):
        wandb.init(id="Run_1x")
    with pytest.raises(ValueError, match="unknown mode 'cloud'"):
        wandb.init(mode="cloud")


def test_save_code_stores_the_launching_script(tmp_path, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("import core.wandb as wandb\nprint('hello')\n")
    monkeypatch.setattr(sys, "argv", [str(script)])
    store = Store()
    run = wandb.init(save_code=True)
    wandb.finish()
    with store.engine.connect() as conn:
        code = conn.exec_driver_sql("SELECT code FROM runs WHERE id = ?", (run.id,)).scalar()
    assert code == script.read_text()


def test_disabled_mode_accepts_everything_and_writes_nothing(lab_home, tmp_path, monkeypatch):
    (tmp_path / "f.txt").write_text("x")
    for run in (wandb.init(mode="disabled", config={"lr": 0.1}), None):
        if run is None:
            monkeypatch.setenv("WANDB_MODE", "disabled")
            run = wandb.init(config={"lr": 0.1})
        assert run.disabled and wandb.config.lr == 0.1
        wandb.log({"acc": 0.5, "anything": object()})
        wandb.summary["best"] = 1
        assert wandb.save(str(tmp_path / "f.txt")) == []
        artifact = wandb.Artifact("data", "dataset")
        artifact.add_file(tmp_path / "f.txt")
        assert wandb.log_artifact(artifact) is artifact and artifact.version is None
        wandb.use_artifact("data:latest").download()
        with wandb.init(mode="disabled") as inner:
            inner.log({"a": 1})
        wandb.finish()
    assert not lab_home.exists()


def test_heartbeat_keeps_a_silent_run_alive(monkeypatch):
    import time

    monkeypatch.setattr(wandb, "HEARTBEAT_S", 0.05)
    store = Store()
    run = wandb.init()
    first = store.get_run(run.id).heartbeat_at
    time.sleep(0.4)
    assert store.get_run(run.id).heartbeat_at > first
    wandb.finish()


@pytest.mark.slow
def test_uncaught_exception_fails_the_run_and_a_plain_exit_finishes_it(lab_home):
    store = Store()
    for ending, status in (("raise RuntimeError('bad data')", RunStatus.FAILED), ("pass", RunStatus.FINISHED)):
        script = textwrap.dedent(f"""
            import core.wandb as wandb
            run = wandb.init(project="exit")
            wandb.log({{"a": 1}}, commit=False)
            print(run.id)
            {ending}
        """)
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                              env={"LAB_HOME": str(lab_home), "PATH": "/usr/bin:/bin"}, timeout=120)
        record = store.get_run(done.stdout.split()[0])
        assert record.status is status and steps_of(store, record.run_id, "a") == [(0, 1)]
    assert store.list_runs()[1].reason == "RuntimeError: bad data"


# -- images ------------------------------------------------------------------------------------------

def pixels(image: wandb.Image) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(image.png)))


def test_float_pixels_are_rounded_not_truncated():
    values = np.array([[0.0, 0.999, 0.5, 0.0019, 1.0, 0.2]])
    assert to_uint8(values).tolist() == [[0, 255, 128, 0, 255, 51]]      # truncation: 254, 127, 50
    assert pixels(wandb.Image(values)).tolist() == [[0, 255, 128, 0, 255, 51]]
    chw = torch.full((3, 2, 4), 0.999)
    image = wandb.Image(chw, caption="c")
    assert pixels(image).shape == (2, 4, 3) and pixels(image).max() == 255 and image.caption == "c"
    assert pixels(wandb.Image(torch.full((1, 1, 2, 2), 0.5, dtype=torch.bfloat16))).tolist() == [[128, 128]] * 2
    assert to_uint8(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]   # W&B: min-max scaled
    assert to_uint8(np.array([0.0, 127.4, 300.0])).tolist() == [0, 127, 255]  # W&B: read as 0..255
    assert to_uint8(np.array([True, False])).tolist() == [255, 0]
    with pytest.raises(ValueError, match="NaN or infinite"):
        to_uint8(np.array([np.nan]))
    with pytest.raises(ValueError, match="integer image values must lie in 0..255"):
        to_uint8(np.array([0, 4095]))


def test_image_inputs_pil_uint8_rgba_path_and_bad_shapes(tmp_path):
    rgba = np.zeros((3, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 200
    assert pixels(wandb.Image(rgba)).tolist() == rgba.tolist()
    pil = PILImage.new("RGB", (6, 2), (10, 20, 30))
    image = wandb.Image(pil, mode="L")
    assert (image.width, image.height, image.mode) == (6, 2, "L")
    pil.save(tmp_path / "p.png")
    assert pixels(wandb.Image(str(tmp_path / "p.png")))[0, 0].tolist() == [10, 20, 30]
    with pytest.raises(ValueError, match=r"needs shape \(H, W\), \(H, W, 3\) or \(H, W, 4\); got \(2, 3, 5\)"):
        wandb.Image(np.zeros((2, 3, 5)))
    with pytest.raises(TypeError, match="Image takes a PIL image, a numpy array"):
        wandb.Image([[1, 2]])


def test_image_from_a_matplotlib_figure():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(2, 1), dpi=50)
    figure.patch.set_facecolor((1.0, 0.0, 0.0))
    try:
        image = wandb.Image(figure, caption="curve")
    finally:
        plt.close(figure)
    assert (image.width, image.height, image.caption) == (100, 50, "curve")
    assert pixels(image)[0, 0][:3].tolist() == [255, 0, 0]


def test_logged_images_are_stored_once_per_content(lab_home):
    store = Store()
    run = wandb.init()
    same = np.full((4, 4), 0.5)
    wandb.log({"samples": [wandb.Image(same, caption="a"), wandb.Image(same, caption="b")], "one": wandb.Image(same)})
    wandb.finish()
    rows = store.images(run.id)
    assert [(r["key"], r["step"], r["caption"]) for r in rows] == [("samples", 0, "a"), ("samples", 0, "b"),
                                                                   ("one", 0, "")]
    assert len({r["sha256"] for r in rows}) == 1 and store.blob_path(rows[0]["sha256"]).is_file()
    assert len(list((lab_home / "artifacts").rglob("*"))) == 2          # one folder, one blob


# -- tables ------------------------------------------------------------------------------------------

def test_table_rows_columns_and_image_cells_stored_as_blobs():
    store = Store()
    run = wandb.init()
    table = wandb.Table(columns=["image", "truth", "pred"])
    digit = wandb.Image(np.eye(5), caption="seven")
    table.add_data(digit, 7, torch.tensor(1))
    table.add_data(wandb.Image(np.eye(5)), np.int64(3), 3)
    with pytest.raises(ValueError, match=r"add_data got 2 values for 3 columns \(image, truth, pred\)"):
        table.add_data(1, 2)
    with pytest.raises(TypeError, match="Table row 2, column 'pred': a object cannot be stored"):
        table.add_data(None, 1, object())
    assert table.columns == ["image", "truth", "pred"] and len(table.data) == 2
    assert table.data[0][0] is digit and table.data[0][1:] == [7, 1] and table.get_column("truth") == [7, 3]
    wandb.log({"cases": table})
    wandb.finish()
    (stored,) = store.tables(run.id)
    assert stored["key"] == "cases" and stored["step"] == 0 and stored["columns"] == ["image", "truth", "pred"]
    cell = stored["rows"][0][0]
    assert cell == {"_type": "image", "sha256": cell["sha256"], "caption": "seven", "width": 5, "height": 5}
    assert stored["rows"][1][0]["sha256"] == cell["sha256"] and stored["rows"][1][1:] == [3, 3]
    assert store.read_blob(cell["sha256"]) == digit.png


def test_table_from_data_and_dataframe():
    import pandas as pd

    assert wandb.Table(data=[[1, 2, 3]]).columns == ["Input", "Output", "Expected"]      # W&B's default
    table = wandb.Table(dataframe=pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
    assert table.columns == ["x", "y"] and table.data == [[1, "a"], [2, "b"]]
    table.add_column("z", [0.5, 0.25])
    assert table.data[1] == [2, "b", 0.25]
    with pytest.raises(ValueError, match="distinct non-empty strings"):
        wandb.Table(columns=["a", "a"])


# -- artifacts -------------------------------------------------------------------------------------

def make_folder(root):
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("same content")
    (root / "sub" / "b.txt").write_text("other")
    (root / "copy.txt").write_text("same content")
    return root


def test_artifact_versions_aliases_use_and_download(tmp_path, lab_home):
    store = Store()
    folder = make_folder(tmp_path / "data")
    producer = wandb.init()
    artifact = wandb.Artifact("mnist", type="dataset", description="d", metadata={"n": np.int64(3)})
    artifact.add_dir(folder, name="raw")
    artifact.add_file(folder / "a.txt", name="top.txt")
    with artifact.new_file("notes.md") as handle:
        handle.write("hello")
    assert artifact.files == ("notes.md", "raw/a.txt", "raw/copy.txt", "raw/sub/b.txt", "top.txt")
    logged = wandb.log_artifact(artifact, aliases=["best"])
    assert logged is artifact and (artifact.name, artifact.version) == ("mnist:v0", "v0")
    assert sorted(artifact.aliases) == ["best", "latest"]
    shas = {sha for _, sha, _ in store.get_artifact("mnist", "v0").files}
    assert len(shas) == 3 and store.get_artifact("mnist", "best").producer_run == producer.id   # one blob per content
    assert sum(1 for p in (lab_home / "artifacts").rglob("*") if p.is_file()) == 3
    again = wandb.Artifact("mnist", "dataset")
    again.add_dir(folder, name="raw")
    wandb.log_artifact(again)
    assert again.version == "v1" and again.aliases == ["latest"]
    with pytest.raises(ValueError, match="already stored"):
        wandb.log_artifact(again)
    wandb.finish()

    user = wandb.init()
    used = user.use_artifact("team/project/mnist:best", type="dataset")
    assert (used.name, used.version, used.type, used.metadata) == ("mnist:v0", "v0", "dataset", {"n": 3})
    assert used.files == ("notes.md", "raw/a.txt", "raw/copy.txt", "raw/sub/b.txt", "top.txt")
    path = used.download()
    assert path == str(store.run_folder(user.id) / "artifacts" / "mnist-v0")
    assert (store.run_folder(user.id) / "artifacts" / "mnist-v0" / "raw" / "sub" / "b.txt").read_text() == "other"
    assert wandb.use_artifact("mnist").version == "v1"
    assert used.download(tmp_path / "out") == str(tmp_path / "out")
    assert (tmp_path / "out" / "notes.md").read_text() == "hello"
    assert store.artifact_users(store.get_artifact("mnist", "v0").id) == [user.id]
    with pytest.raises(ValueError, match="has type 'dataset', not 'model'"):
        wandb.use_artifact("mnist:v0", type="model")
    with pytest.raises(wandb.Error, match="no artifact mnist:v9 in the store"):
        wandb.use_artifact("mnist:v9")
    with pytest.raises(ValueError, match="a new version cannot be 'model'"):
        model = wandb.Artifact("mnist", "model")
        model.add_file(folder / "a.txt")
        wandb.log_artifact(model)


def test_artifact_copies_files_when_added_and_refuses_empty_or_final(tmp_path):
    store = Store()
    source = tmp_path / "w.bin"
    source.write_bytes(b"v1")
    wandb.init()
    artifact = wandb.Artifact("model", "model")
    artifact.add_file(source)
    source.write_bytes(b"v2")                        # edited after add_file: the added copy is logged
    wandb.log_artifact(artifact)
    assert store.read_blob(store.get_artifact("model").files[0][1]) == b"v1"
    with pytest.raises(ValueError, match="is stored and final"):
        artifact.add_file(source, name="other")
    with pytest.raises(ValueError, match="has no files"):
        wandb.log_artifact(wandb.Artifact("empty", "model"))
    with pytest.raises(ValueError, match="already holds 'w.bin'; pass overwrite=True"):
        fresh = wandb.Artifact("model", "model")
        fresh.add_file(source)
        fresh.add_file(source)
    by_path = wandb.log_artifact(str(source), type="model")
    assert by_path.name == "w.bin:v0" and by_path.files == ("w.bin",)


def test_artifact_names_cannot_leave_their_folder(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    folder = make_folder(tmp_path / "data")
    (folder / "link.txt").symlink_to(outside)
    (folder / "inner.txt").symlink_to(folder / "a.txt")
    artifact = wandb.Artifact("data", "dataset")
    for bad in ("../x.txt", "/etc/passwd", "a/../../x", "C:\\x"):
        with pytest.raises(UnsafePath, match="artifact 'data'"):
            artifact.add_file(folder / "a.txt", name=bad)
        with pytest.raises(UnsafePath):
            with artifact.new_file(bad):
                pass
    with pytest.raises(UnsafePath):
        artifact.add_dir(folder, name="../up")
    with pytest.warns(UserWarning, match="skipped .*link.txt: it links outside"):
        artifact.add_dir(folder)
    assert "link.txt" not in artifact.files and "inner.txt" in artifact.files
    for bad_name in ("../x", "a/b", "a:b", "", ".."):
        with pytest.raises(ValueError, match="artifact name"):
            wandb.Artifact(bad_name, "dataset")
    wandb.init()
    with pytest.raises(ValueError, match="artifact name '..'"):
        wandb.use_artifact("x/..:latest")
    with pytest.raises(ValueError, match="alias 'a/b'"):
        wandb.log_artifact(artifact, aliases=["a/b"])


# -- saved files -------------------------------------------------------------------------------------

def test_save_labels_files_by_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    for name in ("a.pt", "b.pt", "c.log"):
        (tmp_path / "ckpt" / name).write_text(name)
    store = Store()
    run = wandb.init()
    assert wandb.save("ckpt/*.pt") == ["ckpt/a.pt", "ckpt/b.pt"]
    assert wandb.save(str(tmp_path / "ckpt" / "c.log")) == ["c.log"]          # absolute: the file name
    assert wandb.save(str(tmp_path / "ckpt" / "a.pt"), base_path=str(tmp_path)) == ["ckpt/a.pt"]
    assert wandb.save("ckpt/c.log", policy="end") == ["ckpt/c.log"]
    with pytest.raises(UnsafePath):
        wandb.save(str(tmp_path / "ckpt" / "a.pt"), base_path=str(tmp_path / "ckpt" / "deeper"))
    with pytest.raises(ValueError, match="unknown save policy 'often'"):
        wandb.save("ckpt/a.pt", policy="often")
    with pytest.warns(UserWarning, match="matched no files"):
        assert wandb.save("nothing/*.x") == []
    (tmp_path / "ckpt" / "b.pt").write_text("changed")                        # "live": stored again at finish
    with open(f"{run.dir}/model.pt", "w") as handle:                            # W&B idiom: files in run.dir
        handle.write("weights")
    wandb.finish()
    saved = [(f["path"], f["size"]) for f in store.run_files(run.id)]
    assert sorted(saved) == [("c.log", 5), ("ckpt/a.pt", 4), ("ckpt/a.pt", 4), ("ckpt/b.pt", 4), ("ckpt/b.pt", 7),
                             ("ckpt/c.log", 5), ("model.pt", 7)]
    assert not any(p.startswith("/") for p, _ in saved)
