"""core.compare: the runs table and its filter, curves, smoothing, seed bands, config diffs and exports."""

import base64
import io
import json
import math
import zipfile
from types import SimpleNamespace

import pandas as pd
import pytest
from PIL import Image

from core.compare import (RUN_COLUMNS, SPREAD_CHOICES, CompareError, architecture, artifact_zip, artifacts_frame,
                          band_frame, compare_figure, comparison_figure, config_diff, config_json, curves_frame,
                          delete_problem, escape_markdown, events_frame, file_name, group_names,
                          image_data_url, image_steps, images_at, label_changes, metric_keys, metrics_csv,
                          parse_tags, run_labels, runs_frame, seed_groups, smooth, sort_frame, table_frame)
from core.config import TrainConfig
from core.runfilter import FilterError, filter_frame
from core.tracker import Store
from tests.conftest import train_runs_into

CONFIGS = {"thr": TrainConfig(dataset="threshold", epochs=2, batch_size=6),
           "m1": TrainConfig(dataset="moons", epochs=2, num_samples=100, seed=1),
           "m2": TrainConfig(dataset="moons", epochs=2, num_samples=100, seed=2)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A lab home holding three real runs (threshold, and moons with seeds 1 and 2): (home, {name: id})."""
    home = tmp_path_factory.mktemp("lab")
    ids = train_runs_into(home, CONFIGS, project="toys", tags=["a", "b"])
    return home, ids


@pytest.fixture
def store(trained, monkeypatch) -> Store:
    monkeypatch.setenv("LAB_HOME", str(trained[0]))
    return Store()


@pytest.fixture
def ids(trained) -> dict:
    return trained[1]


def png_bytes(color=(255, 0, 0), size=(4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


# -- the runs table --------------------------------------------------------------------------------

def test_runs_frame_has_one_row_per_run_with_config_summary_and_duration(store, ids):
    frame = runs_frame(store)
    assert tuple(frame.columns) == RUN_COLUMNS
    assert frame["run_id"].tolist() == [ids["m2"], ids["m1"], ids["thr"]]         # newest first
    row = frame.set_index("run_id").loc[ids["thr"]]
    run = store.get_run(ids["thr"])
    assert (row["name"], row["project"], row["status"], row["source"]) == ("thr", "toys", "finished", "script")
    assert (row["dataset"], row["model"], row["optimizer"], row["lr"]) == ("threshold", "mlp", "adam", 1e-3)
    assert (row["batch_size"], row["epochs"], row["seed"], row["hidden"]) == (6, 2, 42, "32,16")
    assert pd.isna(row["width"])                                                 # an mlp has no cnn width
    assert row["best_val_acc"] == run.summary["best_val_acc"]
    assert row["best_val_loss"] == run.summary["best_val_loss"]
    assert row["duration_s"] == pytest.approx(run.ended_at - run.created_at)
    assert row["duration_s"] > 0 and row["tags"] == "a, b"
    assert str(frame["batch_size"].dtype) == "Int64" and frame["lr"].dtype == "float64"


def test_runs_frame_of_an_empty_store_and_a_bare_running_run(lab_home):
    store = Store()
    assert runs_frame(store).empty and tuple(runs_frame(store).columns) == RUN_COLUMNS
    run_id = store.create_run({"lr": "oops", "dataset": ["a"], "hidden": {"x": 1}, "epochs": 2.5},
                              name="wandb script")
    row = runs_frame(store).iloc[0]
    assert row["run_id"] == run_id and row["status"] == "running"
    assert (row["dataset"], row["hidden"], row["epochs"]) == ('["a"]', '{"x": 1}', 2.5)
    assert pd.isna(row["lr"]) and pd.isna(row["best_val_acc"]) and row["tags"] == ""
    assert 0 <= row["duration_s"] < 60                                          # heartbeat - created


def test_architecture_shows_only_what_the_model_uses():
    assert architecture({"model": "mlp", "hidden": [64, 8], "width": 64}) == ("64,8", None)
    assert architecture({"model": "cnn", "hidden": [32, 16], "width": 16}) == (None, 16)
    assert architecture({"model": "logreg", "hidden": [32], "width": 64}) == (None, None)
    assert architecture({}) == (None, None)


def test_filter_frame_narrows_with_pandas_query_syntax(store, ids):
    frame = runs_frame(store)
    assert set(filter_frame(frame, 'dataset == "moons"')["run_id"]) == {ids["m1"], ids["m2"]}
    assert filter_frame(frame, "seed >= 2 and batch_size == 64")["run_id"].tolist() == [ids["m2"]]
    assert filter_frame(frame, 'name.str.contains("m")')["name"].tolist() == ["m2", "m1"]
    assert filter_frame(frame, "width.isna()").shape[0] == 3
    assert filter_frame(frame, "  ") is frame


@pytest.mark.parametrize("query, fragment", [("lr >", "invalid syntax"),
                                             ("status == finished", "name 'finished' is not defined"),
                                             ("@frame", "invalid syntax"),
                                             ("nope > 1", "name 'nope' is not defined"),
                                             ("lr", "is not a condition")])
def test_filter_frame_turns_a_bad_query_into_one_line(store, query, fragment):
    with pytest.raises(FilterError) as caught:
        filter_frame(runs_frame(store), query)
    message = str(caught.value)
    assert fragment in message and "\n" not in message and 'dataset == "moons"' in message


def test_filter_frame_supports_the_documented_subset(store, ids):
    frame = runs_frame(store)
    assert set(filter_frame(frame, "dataset in ['moons']")["run_id"]) == {ids["m1"], ids["m2"]}
    others = set(frame["run_id"]) - {ids["m1"], ids["m2"]}
    assert set(filter_frame(frame, "dataset not in ('moons',)")["run_id"]) == others
    assert filter_frame(frame, "1 < seed <= 2 & ~(batch_size != 64)")["run_id"].tolist() == [ids["m2"]]
    assert filter_frame(frame, "seed.between(2, 2) | name.str.startswith('m1')")["name"].tolist() == ["m2", "m1"]
    assert filter_frame(frame, "`best_val_acc` * 2 >= 0 or lr.isna()").shape[0] == frame.shape[0]
    assert filter_frame(frame, 'name == "a@b"').empty


HOSTILE_QUERIES = [
    "run_id.__class__.__init__.__globals__['sys'].modules['os'].system('touch {marker}')",
    "__import__('os').system('touch {marker}')",
    "name.str.contains('x').__class__.__mro__[1].__subclasses__()",
    "lr.apply(lambda v: open('{marker}', 'w'))",
    "lr.pipe(print)",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "dataset == \"moons\" and exec('open(\"{marker}\", \"w\")')",
    "name.str.cat(sep=open('{marker}', 'w').name)",
    "`run_id`.__class__",
    "(lambda: 1)()",
    "lr if 1 else 2",
    "frame['lr'] > 0",
    "name.str.__getattribute__('contains')('x')",
]


@pytest.mark.parametrize("template", HOSTILE_QUERIES)
def test_filter_frame_runs_no_code_from_a_hostile_query(store, tmp_path, template):
    marker = tmp_path / "marker"
    with pytest.raises(FilterError) as caught:
        filter_frame(runs_frame(store), template.format(marker=marker))
    assert "\n" not in str(caught.value)
    assert not marker.exists()


def test_filter_frame_refuses_an_overlong_query(store):
    with pytest.raises(FilterError, match="at most 1000"):
        filter_frame(runs_frame(store), "lr > 0 and " * 200 + "lr > 0")


def test_sort_frame_puts_blanks_last_either_way():
    frame = pd.DataFrame({"x": [2.0, None, 1.0, 3.0]})
    assert sort_frame(frame, "x")["x"].tolist()[:3] == [1.0, 2.0, 3.0]
    assert sort_frame(frame, "x", descending=True)["x"].tolist()[:3] == [3.0, 2.0, 1.0]
    assert math.isnan(sort_frame(frame, "x", descending=True)["x"].tolist()[3])
    with pytest.raises(CompareError, match="choose one of: x"):
        sort_frame(frame, "y")


def test_run_labels_name_and_id():
    frame = pd.DataFrame({"run_id": ["abc"], "name": ["**x**"]})
    assert run_labels(frame) == {"abc": "**x** (abc)"}


# -- smoothing, curves, seed groups ----------------------------------------------------------------

def test_smooth_matches_hand_values():
    # w = 0.5: m = 0.5, 1.25, 2.125; debias 1 - 0.5^n = 0.5, 0.75, 0.875
    assert smooth([1, 2, 3], 0.5) == pytest.approx([1.0, 5 / 3, 17 / 7])
    assert smooth([4, 0], 0.9) == pytest.approx([4.0, 0.36 / 0.19])
    assert smooth([1, 5, 2], 0.0) == [1.0, 5.0, 2.0]
    assert smooth([7, 7, 7], 0.99) == [7.0, 7.0, 7.0]
    assert smooth([], 0.5) == []


def test_smooth_equals_pandas_adjusted_ewm_and_passes_non_finite_points():
    values = [0.9, 0.7, 0.75, 0.4, 0.42, 0.3, 0.35]
    reference = pd.Series(values).ewm(alpha=1 - 0.6, adjust=True).mean().tolist()
    assert smooth(values, 0.6) == pytest.approx(reference)
    out = smooth([1.0, math.nan, 3.0], 0.5)
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == pytest.approx((0.25 + 1.5) / 0.75)


@pytest.mark.parametrize("weight", [-0.1, 1.0, 1.5])
def test_smooth_refuses_weights_outside_0_to_1(weight):
    with pytest.raises(CompareError, match="smoothing weight"):
        smooth([1, 2], weight)


def test_metric_keys_put_losses_and_accuracies_first(store, ids):
    found = metric_keys(store, [ids["thr"]])
    assert found[:4] == ["val_loss", "val_acc", "train_loss", "train_acc"]
    assert {"lr", "step_loss", "seconds"} <= set(found[4:]) and found[4:] == sorted(found[4:])
    assert metric_keys(store, []) == []


def test_curves_frame_by_step_epoch_and_wall_time(store, ids):
    run_ids = [ids["thr"], ids["m1"]]
    rows = store.metric_rows(ids["thr"], keys=["val_loss"])
    by_epoch = curves_frame(store, run_ids, "val_loss", x_axis="epoch")
    thr = by_epoch[by_epoch["run_id"] == ids["thr"]]
    assert thr["x"].tolist() == [1.0, 2.0] and thr["value"].tolist() == [r["value"] for r in rows]
    assert thr["smoothed"].tolist() == thr["value"].tolist()
    by_step = curves_frame(store, run_ids, "val_loss", x_axis="step", smoothing=0.5)
    assert by_step[by_step["run_id"] == ids["thr"]]["x"].tolist() == [float(r["step"]) for r in rows]
    assert by_step["smoothed"].tolist()[1] == pytest.approx(smooth([r["value"] for r in rows], 0.5)[1])
    wall = curves_frame(store, run_ids, "val_loss", x_axis="wall time")
    start = store.get_run(ids["thr"]).created_at
    assert wall[wall["run_id"] == ids["thr"]]["x"].tolist() == pytest.approx([r["wall_time"] - start for r in rows])
    assert (wall["x"] > 0).all()
    with pytest.raises(CompareError, match="step, epoch, wall time"):
        curves_frame(store, run_ids, "val_loss", x_axis="time")


def test_seed_groups_group_configs_that_differ_only_in_seed():
    runs = [SimpleNamespace(run_id="a", config={"lr": 0.1, "seed": 1}),
            SimpleNamespace(run_id="b", config={"lr": 0.2, "seed": 1}),
            SimpleNamespace(run_id="c", config={"seed": 2, "lr": 0.1}),
            SimpleNamespace(run_id="d", config={"lr": 0.1}),
            SimpleNamespace(run_id="e", config={"lr": 0.2, "seed": 9, "hidden": [3]})]
    assert seed_groups(runs) == [["a", "c", "d"], ["b"], ["e"]]
    assert seed_groups([]) == []


def test_seed_groups_of_real_runs(store, ids):
    runs = [store.get_run(i) for i in (ids["m1"], ids["thr"], ids["m2"])]
    assert seed_groups(runs) == [[ids["m1"], ids["m2"]], [ids["thr"]]]
    assert group_names(seed_groups(runs), {ids["m1"]: "m1"}) == ["m1 (2 seeds)", ids["thr"]]


def hand_curves() -> pd.DataFrame:
    rows = [("a", 1, 1.0), ("b", 1, 2.0), ("c", 1, 6.0), ("a", 2, 2.0), ("b", 2, 4.0), ("c", 2, 6.0),
            ("z", 1, 10.0), ("z", 2, 20.0)]
    frame = pd.DataFrame(rows, columns=["run_id", "x", "value"])
    return frame.assign(smoothed=frame["value"])


def test_band_frame_mean_and_min_max_by_hand():
    bands = band_frame(hand_curves(), [["a", "b", "c"], ["z"]], spread="min-max")
    first = bands[bands["group"] == 0]
    assert first["x"].tolist() == [1, 2] and first["mean"].tolist() == pytest.approx([3.0, 4.0])
    assert first["lower"].tolist() == [1.0, 2.0] and first["upper"].tolist() == [6.0, 6.0]
    assert first["runs"].tolist() == [3, 3]
    single = bands[bands["group"] == 1]
    assert single["mean"].tolist() == single["lower"].tolist() == single["upper"].tolist() == [10.0, 20.0]


def test_band_frame_population_std_by_hand():
    bands = band_frame(hand_curves(), [["a", "b", "c"]], spread="std")
    # x=1: values 1, 2, 6: mean 3, variance (4 + 1 + 9) / 3; x=2: values 2, 4, 6: variance 8 / 3
    std1, std2 = math.sqrt(14 / 3), math.sqrt(8 / 3)
    assert bands["lower"].tolist() == pytest.approx([3 - std1, 4 - std2])
    assert bands["upper"].tolist() == pytest.approx([3 + std1, 4 + std2])
    with pytest.raises(CompareError, match="min-max, std"):
        band_frame(hand_curves(), [["a"]], spread="iqr")


def test_compare_figure_draws_runs_or_bands():
    curves = hand_curves()
    plain = compare_figure(curves, "val_loss", {"a": "run a"})
    assert len(plain.data) == 4 and plain.data[0].name == "run a" and plain.layout.yaxis.type == "linear"
    smoothed = curves.assign(smoothed=curves["value"] * 0.9)
    assert len(compare_figure(smoothed, "val_loss", {}).data) == 8               # faint raw line behind each
    bands = band_frame(curves, [["a", "b", "c"], ["z"]])
    fig = compare_figure(curves, "val_loss", {}, bands=bands, band_names=["abc", "z"], log_y=True, x_axis="epoch")
    assert [t.name for t in fig.data if t.showlegend is not False] == ["abc", "z"]
    assert fig.data[1].fill == "tonexty" and list(fig.data[2].y) == [3.0, 4.0]
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "epoch"
    wall = compare_figure(curves, "x", {}, x_axis="wall time")
    assert wall.layout.xaxis.title.text == "seconds since the run started"


# -- one run's details -----------------------------------------------------------------------------

def test_comparison_figure_draws_runs_or_seed_bands_and_says_when_it_cannot(store, ids):
    run_ids, names = [ids["m1"], ids["m2"], ids["thr"]], {ids["m1"]: "m1", ids["m2"]: "m2", ids["thr"]: "thr"}
    assert set(SPREAD_CHOICES.values()) == {None, "min-max", "std"}
    fig, note = comparison_figure(store, run_ids, "val_loss", names, x_axis="epoch")
    assert note is None and [t.name for t in fig.data] == ["m1", "m2", "thr"]
    fig, note = comparison_figure(store, run_ids, "val_loss", names, x_axis="epoch", spread="std", log_y=True)
    assert note is None and [t.name for t in fig.data if t.showlegend is not False] == ["m1 (2 seeds)", "thr"]
    assert fig.layout.yaxis.type == "log"
    fig, note = comparison_figure(store, run_ids, "val_loss", names, x_axis="wall time", spread="min-max")
    assert "step or epoch" in note and [t.name for t in fig.data] == ["m1", "m2", "thr"]


def test_delete_problem_refuses_unfinished_or_unconfirmed_runs():
    from core.status import RunStatus

    running = SimpleNamespace(run_id="r1", status=RunStatus.RUNNING)
    assert delete_problem(running, confirmed=True) == "Run r1 is still running: stop it on the Train page first."
    done = SimpleNamespace(run_id="r2", status=RunStatus.FINISHED)
    assert "Tick the box" in delete_problem(done, confirmed=False)
    assert delete_problem(done, confirmed=True) is None


def test_config_diff_keeps_only_differing_keys():
    diff = config_diff({"A": {"lr": 0.1, "seed": 1, "hidden": [32, 16], "opt": "adam"},
                        "B": {"lr": 0.1, "seed": 2, "hidden": [32, 16], "opt": "sgd", "extra": None},
                        "C": {"lr": 0.1, "seed": 1, "hidden": [8], "opt": "adam"}})
    assert diff.index.tolist() == ["extra", "hidden", "opt", "seed"] and diff.columns.tolist() == ["A", "B", "C"]
    assert diff.loc["hidden"].tolist() == ["[32, 16]", "[32, 16]", "[8]"]
    assert diff.loc["opt"].tolist() == ["adam", "sgd", "adam"]
    assert diff.loc["extra"].tolist() == ["(not set)", "null", "(not set)"]
    assert config_diff({"A": {"lr": 1}, "B": {"lr": 1}}).empty
    assert config_diff({"A": {"lr": 1}}).empty


def test_config_diff_of_real_runs(store, ids):
    diff = config_diff({name: store.get_run(i).config for name, i in ids.items()})
    assert diff.index.tolist() == ["batch_size", "dataset", "num_samples", "seed"]
    assert diff.loc["seed"].tolist() == ["42", "1", "2"]


def test_events_and_artifacts_frames(store, ids):
    events = events_frame(store.event_rows(ids["thr"]))
    assert events["kind"].tolist() == ["start", "end"] and events["epoch"].tolist()[1] == 2
    assert json.loads(events["data"].tolist()[1])["status"] == "finished"
    records = store.list_artifacts(ids["thr"])
    frame = artifacts_frame(records)
    assert frame["artifact"].tolist() == [f"model-{ids['thr']}:v0"]
    assert frame["aliases"].tolist() == ["best, latest"] and frame["files"].tolist() == [2]
    assert frame["size_bytes"].tolist() == [sum(size for _, _, size in records[0].files)]
    assert artifacts_frame([]).empty


def test_artifact_zip_holds_each_file_under_its_stored_path(store, ids, tmp_path):
    record = store.list_artifacts(ids["m1"])[0]
    with zipfile.ZipFile(io.BytesIO(artifact_zip(store, record))) as archive:
        assert archive.namelist() == ["best.json", "best.safetensors"]
        folder = store.run_folder(ids["m1"])
        assert archive.read("best.safetensors") == (folder / "best.safetensors").read_bytes()
    (tmp_path / "a.txt").write_text("hello")
    nested = store.log_artifact("notes", "dataset", {"sub/dir/a.txt": tmp_path / "a.txt"})
    with zipfile.ZipFile(io.BytesIO(artifact_zip(store, nested))) as archive:
        assert archive.namelist() == ["sub/dir/a.txt"] and archive.read("sub/dir/a.txt") == b"hello"
        assert archive.testzip() is None


def test_image_data_url_round_trips_png_and_names_jpeg():
    png = png_bytes()
    url = image_data_url(png)
    assert url.startswith("data:image/png;base64,")
    decoded = base64.b64decode(url.split(",", 1)[1])
    assert decoded == png and Image.open(io.BytesIO(decoded)).size == (4, 3)
    jpeg = io.BytesIO()
    Image.new("RGB", (2, 2)).save(jpeg, format="JPEG")
    assert image_data_url(jpeg.getvalue()).startswith("data:image/jpeg;base64,")


def test_table_frame_turns_image_cells_into_data_urls(lab_home):
    store = Store()
    run_id = store.create_run({})
    sha = store.put_blob(png_bytes((0, 255, 0)))
    image = {"_type": "image", "sha256": sha, "caption": "green"}
    gone = {"_type": "image", "sha256": "0" * 64, "caption": "gone"}
    store.log_table(run_id, "cases", ["label", "picture", "extra", "label"],
                    [[1, image, {"k": [1]}, "a"], [0, gone, None, "b"]], step=3)
    frame, image_columns = table_frame(store, store.tables(run_id)[0])
    assert frame.columns.tolist() == ["label", "picture", "extra", "label (2)"] and image_columns == ["picture"]
    assert frame["picture"].tolist()[0] == image_data_url(png_bytes((0, 255, 0)))
    assert frame["picture"].isna().tolist()[1] and frame["extra"].tolist()[0] == '{"k": [1]}'
    assert filter_frame(frame, "label == 0")["label (2)"].tolist() == ["b"]


def test_image_steps_and_images_at():
    rows = [{"key": "s", "step": 3, "sha256": "x"}, {"key": "s", "step": 1, "sha256": "y"},
            {"key": "s", "step": 3, "sha256": "z"}, {"key": "t", "step": None, "sha256": "w"}]
    assert image_steps(rows, "s") == [1, 3] and image_steps(rows, "t") == [0]
    assert [r["sha256"] for r in images_at(rows, "s", 3)] == ["x", "z"]
    assert [r["sha256"] for r in images_at(rows, "t", 0)] == ["w"]


# -- labels and exports ----------------------------------------------------------------------------

def test_parse_tags_and_label_changes():
    assert parse_tags(" a, b,,a , c d ") == ("a", "b", "c d") and parse_tags("") == ()
    run = SimpleNamespace(name="old", tags=("x",), notes="")
    assert label_changes(run, " old ", "x", "") == {}
    assert label_changes(run, "new", "x, y", "why") == {"name": "new", "tags": ("x", "y"), "notes": "why"}
    with pytest.raises(CompareError, match="needs a name"):
        label_changes(run, "  ", "x", "")


def test_metrics_csv_and_config_json(store, ids):
    rows = store.metric_rows(ids["thr"])
    frame = pd.read_csv(io.BytesIO(metrics_csv(store, ids["thr"])))
    assert frame.columns.tolist() == ["key", "value", "step", "epoch", "wall_time"] and len(frame) == len(rows)
    val = frame[frame["key"] == "val_acc"]
    assert val["value"].tolist() == [r["value"] for r in rows if r["key"] == "val_acc"]
    assert val["epoch"].tolist() == [1, 2]
    assert json.loads(config_json(store.get_run(ids["thr"]))) == CONFIGS["thr"].to_dict()


def test_metrics_csv_of_a_run_without_metrics(lab_home):
    store = Store()
    assert metrics_csv(store, store.create_run({})).decode().strip() == "key,value,step,epoch,wall_time"


def test_escape_markdown_and_file_name():
    assert escape_markdown("**b** [x](http://e) <i>\nnext") == r"\*\*b\*\* \[x\]\(http\:\/\/e\) \<i\> next"
    assert escape_markdown("plain words 12") == "plain words 12"
    assert file_name("model/../x y", "v0", suffix=".zip") == "model-..-x-y_v0.zip"
    assert file_name("///", suffix=".zip") == "download.zip"
