"""Sweep configs that would hurt the lab or fail their runs are refused up front, in one short line."""

from pathlib import Path

import pytest

from core.demo import DemoLimits
from core.sweeplint import lint
from core.sweepsample import candidate_values, grid_size
from core.sweepspec import SweepConfigError, describe, load_spec
from core.sweeptrainer import check_trainer
from core.sweeptext import MAX_DEPTH, MAX_SHOWN_CHARS, MAX_TEXT_CHARS, show

TRAINER = {"dataset": {"value": "threshold"}, "model": {"value": "mlp"}}


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" document: each level lists the one before nine times (9**levels values)."""
    lines = ["method: random", "l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    lines.append(f"parameters: {{x: {{values: *l{levels - 1}}}}}")
    return "\n".join(lines)


def refusal(source, limits=None) -> str:
    """The one-line error for a sweep config the built-in trainer must not run."""
    with pytest.raises(SweepConfigError) as caught:
        check_trainer(load_spec(source), limits)
    message = str(caught.value)
    assert "\n" not in message
    return message


def trainer_sweep(method="random", **parameters) -> dict:
    return {"method": method, "parameters": {**TRAINER, **parameters}}


# --------------------------------------------------------------------------- YAML that expands or nests without end


def test_an_alias_bomb_is_refused_before_it_expands():
    with pytest.raises(SweepConfigError) as caught:
        load_spec(alias_bomb())
    assert str(caught.value) == ("sweep config at line 3, column 10: YAML aliases (*l0) are not allowed in a "
                                 "sweep config; write the value out")


def test_merge_keys_are_aliases_too_but_anchors_alone_load():
    with pytest.raises(SweepConfigError, match=r"aliases \(\*base\) are not allowed"):
        load_spec("base: &base {value: 1}\nmethod: random\nparameters: {x: {<<: *base}}")
    assert load_spec("method: random\nparameters: {x: &one {value: 1}}").param("x").value == 1


def test_text_too_long_or_too_deep_is_refused_in_one_line(tmp_path):
    with pytest.raises(SweepConfigError, match=f"longer than {MAX_TEXT_CHARS:,} characters"):
        load_spec("method: random\n#" + "x" * MAX_TEXT_CHARS)
    for deep in ("[" * 5000, "{" * 5000, '{"a": ' * 2000, "- " * (MAX_DEPTH + 5) + "x"):
        with pytest.raises(SweepConfigError, match=f"more than {MAX_DEPTH} levels deep"):
            load_spec(deep)
    big = tmp_path / "big.yaml"
    big.write_text("method: random\n" + "#" * (MAX_TEXT_CHARS * 3))
    with pytest.raises(SweepConfigError, match=f"{big} is longer than"):
        load_spec(big)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00method")
    with pytest.raises(SweepConfigError, match="is not a UTF-8 text file"):
        load_spec(binary)


def test_an_aliased_document_within_the_limits_still_says_where():
    text = "method: random\nparameters:\n  a: &a {value: 1}\n  b: *a\n"
    with pytest.raises(SweepConfigError, match="at line 4, column 6: YAML aliases"):
        load_spec(text)


# --------------------------------------------------------------------------- user values in messages are cut short


@pytest.mark.parametrize("config", [
    {"method": "random", "parameters": {"lr": list(range(100_000))}},
    {"method": "random", "parameters": {"lr": {"values": [1], "k" * 5000: 1}}},
    {"method": "random", "parameters": {"x" * 5000: {"value": 1}}, "metric": ["m" * 5000]},
    {"method": "random", "parameters": {"x": {"values": list(range(5000)), "probabilities": [0.1] * 5000}}},
    {"method": "random", "parameters": {"x": {"value": 1}}, "name": {"k": "v" * 100_000}},
    "- " + "x" * 90_000,
])
def test_messages_show_a_short_repr_of_huge_values(config):
    with pytest.raises(SweepConfigError) as caught:
        load_spec(config)
    assert len(str(caught.value)) < 400 and "..." in str(caught.value)


def test_lint_warnings_cut_a_long_metric_name():
    notes = lint(load_spec({"method": "random", "metric": {"name": "loss" + "x" * 10_000, "goal": "maximize"},
                            "parameters": {"x": {"value": 1}}}))
    assert len(notes) == 1 and notes[0].startswith("metric: goal maximize for 'lossxxx") and len(notes[0]) < 200


def test_show_cuts_values_to_a_fixed_length_without_walking_them():
    assert show("abc") == "'abc'"
    assert len(show("x" * 10_000)) <= MAX_SHOWN_CHARS
    nested = [[list(range(1000))] * 1000] * 1000          # a billion items if printed in full
    assert show(nested).startswith("[[[0, 1, 2") and len(show(nested)) <= MAX_SHOWN_CHARS


# --------------------------------------------------------------------------- values the trainer would refuse


def test_lr_uniform_below_zero_is_refused_naming_parameter_value_and_limit():
    message = refusal(trainer_sweep(lr={"min": -1.0, "max": 1.0}))
    assert message.startswith("parameters.lr: uniform can give -1 (min), which is not allowed: ")
    assert "1e-12" in message


def test_batch_size_int_uniform_up_to_a_billion_is_refused():
    message = refusal(trainer_sweep(batch_size={"distribution": "int_uniform", "min": 0, "max": 1e9}))
    assert message.startswith("parameters.batch_size: int_uniform can give 0 (min), which is not allowed: ")
    message = refusal(trainer_sweep(batch_size={"distribution": "int_uniform", "min": 1, "max": 1e9}))
    assert message.startswith("parameters.batch_size: int_uniform can give 1000000000 (max), which is not allowed")
    assert "1048576" in message


def test_every_values_entry_is_checked():
    message = refusal(trainer_sweep(epochs={"values": [5, 0]}))
    assert message.startswith("parameters.epochs: values entry 0 is not allowed: ") and "equal to 1" in message
    message = refusal(trainer_sweep(lr={"values": [0.1, "abc"]}))
    assert message.startswith("parameters.lr: values entry 'abc' is not allowed: ") and "number" in message
    message = refusal(trainer_sweep(optimizer={"values": ["adam", "sgdd"]}))
    assert message.startswith("parameters.optimizer: values entry 'sgdd' is not allowed: ") and "'sgd'" in message


def test_log_bounds_are_checked_as_the_values_they_give():
    message = refusal(trainer_sweep(lr={"distribution": "log_uniform", "min": -10, "max": 5}))
    assert message.startswith("parameters.lr: log_uniform can give 148.4131591 (exp(max)), which is not allowed")
    message = refusal(trainer_sweep(lr={"distribution": "inv_log_uniform", "min": -5, "max": 2}))
    assert message.startswith("parameters.lr: inv_log_uniform can give 148.4131591 (exp(-min))")
    for low in (0, -1e-3):
        with pytest.raises(SweepConfigError, match=f"log_uniform_values needs min > 0 .*got {low}"):
            load_spec(trainer_sweep(lr={"distribution": "log_uniform_values", "min": low, "max": 0.1}))


def test_q_below_or_at_zero_and_min_above_max_are_refused():
    for q in (0, -1):
        with pytest.raises(SweepConfigError, match=f"parameters.epochs: q must be > 0, got {q}"):
            load_spec(trainer_sweep(epochs={"distribution": "q_uniform", "min": 1, "max": 9, "q": q}))
    with pytest.raises(SweepConfigError, match="parameters.lr: min 0.1 is not less than max 0.01"):
        load_spec(trainer_sweep(lr={"min": 0.1, "max": 0.01}))


def test_rounding_and_unbounded_distributions_are_checked_where_they_reach():
    message = refusal(trainer_sweep(epochs={"distribution": "q_uniform", "min": 0.4, "max": 3, "q": 1}))
    assert message.startswith("parameters.epochs: q_uniform can give 0 (min rounded to q=1), which is not allowed")
    message = refusal(trainer_sweep(dropout={"distribution": "normal", "mu": 0.2, "sigma": 0.1}))
    assert message.startswith("parameters.dropout: normal can give -0.399780702 (mu - 6 sigma), which is not")
    message = refusal(trainer_sweep(dropout={"distribution": "q_beta", "q": 0.05}))
    assert message.startswith("parameters.dropout: q_beta can give 1 (near 1 rounded to q=0.05)")
    message = refusal(trainer_sweep("grid", epochs={"distribution": "q_uniform", "min": 99_000, "max": 101_000,
                                                    "q": 500}))
    assert "q_uniform can give 100500 (last grid value)" in message and "100000" in message


def test_a_constant_refused_with_the_others_names_its_parameter():
    assert refusal(trainer_sweep(epochs={"value": 0})).startswith("parameters.epochs: 0 is not allowed: ")
    message = refusal(trainer_sweep(schedule={"values": ["none", "table"]}))
    assert message.startswith("parameters.schedule: values entry 'table' is not allowed: lr_table: ")


def test_sensible_sweeps_pass_and_their_ends_are_what_sampling_can_give():
    check_trainer(load_spec(trainer_sweep(
        lr={"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1}, batch_size={"values": [32, 64]},
        dropout={"distribution": "beta", "a": 2, "b": 2}, momentum={"min": 0.5, "max": 0.99},
        epochs={"distribution": "q_uniform", "min": 2, "max": 10, "q": 2},
        weight_decay={"distribution": "log_normal", "mu": -9, "sigma": 1})))
    spec = load_spec({"method": "random", "parameters": {
        "qlu": {"distribution": "q_log_uniform_values", "min": 8, "max": 512, "q": 8},
        "ilu": {"distribution": "inv_log_uniform", "min": 0, "max": 2}}})
    assert candidate_values(spec.param("qlu")) == [("min rounded to q=8", 8), ("max rounded to q=8", 512)]
    assert candidate_values(spec.param("ilu")) == [("exp(-max)", pytest.approx(0.1353352832)), ("exp(-min)", 1.0)]


def test_demo_caps_and_server_folders_are_refused_for_every_value():
    demo = DemoLimits()
    message = refusal(trainer_sweep(data_root={"values": [None, "/srv/data"]}), demo)
    assert message.startswith("parameters.data_root: values entry '/srv/data' is not allowed: server folders")
    assert refusal(trainer_sweep(data_root={"value": "/srv"}), demo).startswith("parameters.data_root: server")
    message = refusal(trainer_sweep(epochs={"min": 1, "max": 50}), demo)
    assert message.startswith("parameters.epochs: int_uniform can give 50 (max)") and "cap of 30" in message
    message = refusal(trainer_sweep(dataset={"values": ["digits", "mnist"]}), demo)
    assert message.startswith("parameters.dataset: values entry 'mnist' is not allowed")
    check_trainer(load_spec(trainer_sweep(data_root={"values": [None, "/srv/data"]})))    # not a demo: allowed


def test_a_grid_range_too_long_to_list_is_refused_and_counted_without_listing():
    with pytest.raises(SweepConfigError, match="parameters.seed: int_uniform 0..1000000000 gives "
                                               "1,000,000,001 grid values, more than 1,000,000"):
        load_spec({"method": "grid", "parameters": {"seed": {"distribution": "int_uniform", "min": 0, "max": 10**9}}})
    with pytest.raises(SweepConfigError, match="parameters.x: q_uniform 0..1 gives 10,000,000 grid values"):
        load_spec({"method": "grid", "parameters": {"x": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 1e-7}}})
    spec = load_spec({"method": "grid", "run_cap": 5, "parameters": {
        "a": {"min": 0, "max": 999_999}, "b": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 1e-6}}})
    assert grid_size(spec) == 10**12
    assert "run_cap: the grid has 1000000000000 points but run_cap is 5; only the first 5 will run" in lint(spec)


# --------------------------------------------------------------------------- the summary line


def test_describe_says_how_hyperband_judges_runs():
    spec = load_spec({"method": "random", "metric": {"name": "val_loss"}, "run_cap": 8, "parameters": TRAINER,
                      "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2, "strict": True}})
    assert describe(spec) == ("random search over 2 parameters · minimize val_loss · hyperband early termination "
                              "(min_iter 2, eta 2, strict true: a run is judged by its value at each bracket) · "
                              "run cap 8")
    loose = load_spec({**spec.to_dict(), "early_terminate": {"type": "hyperband", "max_iter": 9, "s": 2}})
    assert "(max_iter 9, s 2, eta 3, strict false: a run is judged by its best value so far)" in describe(loose)
    assert describe(load_spec({"method": "grid", "parameters": TRAINER})).endswith("no early termination · no run cap")


# --------------------------------------------------------------------------- data the runs could not have


def test_a_dataset_whose_files_are_missing_is_refused_with_the_loaders_message(tmp_path):
    from core.datacheck import idx_files_missing

    empty = str(tmp_path / "no-data")
    message = refusal(trainer_sweep(dataset={"values": ["digits", "mnist"]}, data_root={"value": empty}))
    raw = tmp_path / "no-data" / "MNIST" / "raw"
    assert message == f"parameters.dataset: values entry 'mnist' is not allowed: {idx_files_missing('mnist', raw)}"
    assert refusal({"method": "grid", "parameters": {"dataset": {"value": "fashion-mnist"},
                                                     "data_root": {"value": empty}}}).startswith(
        "parameters: fashion-mnist files not found")


def test_a_cnn_on_points_is_refused_where_the_sweep_gives_it():
    message = refusal(trainer_sweep(dataset={"value": "moons"}, model={"values": ["mlp", "cnn"]}))
    assert message.startswith("parameters.model: values entry 'cnn' is not allowed: model 'cnn' needs an image "
                              "dataset; 'moons' holds points")


def test_a_sweep_over_mnist_with_its_files_present_is_accepted(tmp_path):
    from core.datacheck import find_idx

    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not find_idx(data / "MNIST" / "raw", "t10k-images-idx3-ubyte"):
        pytest.skip(f"no MNIST files in {data}")
    check_trainer(load_spec(trainer_sweep(dataset={"values": ["digits", "mnist"]}, data_root={"value": str(data)})))
