"""Sweep configs: W&B configs load unchanged, bad ones fail with one line naming the key."""

import dataclasses
import json

import pytest

from core.sweeplint import lint
from core.sweepparams import DISTRIBUTIONS, ParamSpec
from core.sweepspec import HyperbandSpec, MetricSpec, SweepConfigError, SweepSpec, load_spec

SEED_EXAMPLE = {
    "method": "random",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "parameters": {
        "batch_size": {"distribution": "q_log_uniform_values", "q": 8, "min": 32, "max": 256},
        "dropout": {"values": [0.3, 0.4, 0.5]},
        "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
    },
}

EVERY_DISTRIBUTION = {
    "c": {"value": [1, 2]},
    "cat": {"values": ["a", "b"]},
    "cwp": {"values": [1, 2], "probabilities": [0.25, 0.75]},
    "iu": {"min": 1, "max": 4},
    "u": {"min": 0.0, "max": 1},
    "qu": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
    "lu": {"distribution": "log_uniform", "min": -5, "max": -1},
    "luv": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
    "qlu": {"distribution": "q_log_uniform", "min": 0, "max": 4, "q": 1},
    "qluv": {"distribution": "q_log_uniform_values", "min": 8, "max": 512, "q": 8},
    "ilu": {"distribution": "inv_log_uniform", "min": 1, "max": 5},
    "iluv": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1},
    "n": {"distribution": "normal", "mu": 1, "sigma": 2},
    "qn": {"distribution": "q_normal", "q": 0.5},
    "ln": {"distribution": "log_normal"},
    "qln": {"distribution": "q_log_normal", "sigma": 0.5, "q": 2},
    "be": {"distribution": "beta", "a": 2, "b": 3},
    "qbe": {"distribution": "q_beta", "q": 0.1},
    "nest": {"parameters": {"inner": {"values": [1, 2]}, "deeper": {"parameters": {"x": {"value": 0}}}}},
}


def full_config():
    return {"method": "random", "parameters": json.loads(json.dumps(EVERY_DISTRIBUTION)),
            "metric": {"name": "val_loss", "target": 0.1, "impute": "latest"},
            "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 2},
            "run_cap": 20, "name": "sw", "description": "d", "project": "p", "program": "train.py",
            "command": ["${env}", "python", "${program}", "${args}"]}


def test_the_seed_notes_example_loads():
    spec = load_spec(SEED_EXAMPLE)
    assert spec.method == "random"
    assert spec.metric == MetricSpec(name="val_acc", goal="maximize", target=None, impute="worst")
    assert [(p.name, p.distribution) for p in spec.parameters] == [
        ("batch_size", "q_log_uniform_values"), ("dropout", "categorical"), ("lr", "log_uniform_values")]
    assert spec.param("batch_size").q == 8 and spec.param("lr").min == 1e-4
    assert lint(spec) == []


@pytest.mark.parametrize("raw, method, expected", [
    ({"value": 3}, "random", "constant"),
    ({"value": None}, "random", "constant"),
    ({"values": [1, 2]}, "random", "categorical"),
    ({"values": [1, 2], "probabilities": [0.5, 0.5]}, "random", "categorical_w_probabilities"),
    ({"min": 1, "max": 5}, "random", "int_uniform"),
    ({"min": 0.0, "max": 1.0}, "random", "uniform"),
    ({"min": 1, "max": 2.5}, "random", "uniform"),
    ({"min": 1, "max": 5}, "grid", "int_uniform"),
])
def test_distribution_is_inferred_as_wandb_does(raw, method, expected):
    spec = load_spec({"method": method, "parameters": {"x": raw}})
    assert spec.parameters[0].distribution == expected


def test_defaults_are_filled():
    spec = load_spec(full_config())
    assert (spec.param("qu").q, spec.param("qlu").q) == (2, 1)
    assert (spec.param("qn").mu, spec.param("qn").sigma, spec.param("qn").q) == (0, 1, 0.5)
    assert (spec.param("ln").mu, spec.param("ln").sigma) == (0, 1)
    assert (spec.param("qbe").a, spec.param("qbe").b) == (1, 1)
    assert spec.early_terminate == HyperbandSpec(min_iter=3, eta=2, strict=False)
    assert spec.metric.goal == "minimize" and spec.metric.impute == "latest"
    assert load_spec({"method": "random", "metric": {"name": "m"}, "parameters": {"x": {"value": 1}},
                      "early_terminate": {"type": "hyperband", "min_iter": 1}}).early_terminate.eta == 3
    q_default = load_spec({"method": "grid", "parameters": {"x": {"distribution": "q_uniform",
                                                                  "min": 0, "max": 3}}})
    assert q_default.parameters[0].q == 1


def test_nested_parameters_become_dotted_leaves_and_nest_again():
    spec = load_spec(full_config())
    names = [p.name for p in spec.parameters]
    assert names[-2:] == ["nest.inner", "nest.deeper.x"]
    assert spec.param("nest.deeper.x").path == ("nest", "deeper", "x")
    assert spec.to_dict()["parameters"]["nest"] == {"parameters": {
        "inner": {"distribution": "categorical", "values": [1, 2]},
        "deeper": {"parameters": {"x": {"distribution": "constant", "value": 0}}}}}


def test_to_dict_round_trips_through_json_and_stores_the_extras():
    spec = load_spec(full_config())
    again = SweepSpec.from_dict(json.loads(spec.to_json()))
    assert again == spec
    assert again.to_dict() == spec.to_dict()
    assert spec.command == ("${env}", "python", "${program}", "${args}")
    assert (spec.name, spec.description, spec.project, spec.program, spec.run_cap) == (
        "sw", "d", "p", "train.py", 20)
    assert spec.to_dict()["parameters"]["luv"] == {"distribution": "log_uniform_values",
                                                    "min": 1e-5, "max": 1e-1}
    assert spec.to_dict()["early_terminate"] == {"type": "hyperband", "min_iter": 3, "eta": 2,
                                                 "strict": False}


def test_every_distribution_of_the_spec_is_known():
    used = {p.distribution for p in load_spec(full_config()).parameters}
    assert used == set(DISTRIBUTIONS)


YAML_TEXT = """
method: bayes
metric: {name: val_loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-1}
  optimizer: {values: [adam, sgd]}
early_terminate: {type: hyperband, max_iter: 27, s: 2}
"""


def test_loads_yaml_and_json_strings_and_files(tmp_path):
    from_yaml = load_spec(YAML_TEXT)
    assert from_yaml.param("lr").min == 1e-4 and isinstance(from_yaml.param("lr").min, float)
    assert load_spec(json.dumps(from_yaml.to_dict())) == from_yaml
    (tmp_path / "s.yaml").write_text(YAML_TEXT)
    (tmp_path / "s.json").write_text(from_yaml.to_json())
    assert load_spec(str(tmp_path / "s.yaml")) == from_yaml
    assert load_spec(tmp_path / "s.json") == from_yaml
    assert load_spec(from_yaml) is from_yaml


def test_specs_are_frozen_and_validate_on_construction():
    spec = load_spec(SEED_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.method = "grid"
    with pytest.raises(SweepConfigError, match="parameters.x: min 1 is not less than max 0"):
        ParamSpec(path=("x",), distribution="uniform", min=1, max=0)
    with pytest.raises(SweepConfigError, match="unknown parameter 'nope'; allowed: batch_size, dropout, lr"):
        spec.param("nope")


def _with(param=None, **top):
    config = {"method": "random", "metric": {"name": "loss"}, "parameters": {"lr": {"value": 0.1}}}
    if param is not None:
        config["parameters"] = {"lr": param}
    config.update(top)
    return {k: v for k, v in config.items() if v is not ...}


BAD_CONFIGS = [
    (_with({"distribution": "normal", "mean": 0}),
     "parameters.lr: unknown key 'mean'; allowed: distribution, mu, sigma"),
    (_with({"distribution": "loguniform", "min": 0, "max": 1}),
     "parameters.lr: unknown distribution 'loguniform'; allowed: constant,"),
    (_with({"distribution": "loguniform", "min": 0, "max": 1}), "did you mean 'log_uniform'"),
    (_with({"min": 0.5, "max": 0.1}), "parameters.lr: min 0.5 is not less than max 0.1"),
    (_with({"distribution": "log_uniform_values", "min": 0, "max": 1}), "parameters.lr: .*min > 0"),
    (_with({"distribution": "log_uniform", "min": -1, "max": 1000}), "parameters.lr: .*natural logs"),
    (_with({"distribution": "int_uniform", "min": 1.5, "max": 4}), "parameters.lr: int_uniform needs integer"),
    (_with({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}), "parameters.lr: q must be > 0"),
    (_with({"distribution": "normal", "sigma": -1}), "parameters.lr: sigma must be > 0"),
    (_with({"distribution": "beta", "a": "x"}), "parameters.lr: a must be a finite number"),
    (_with({"min": "1e-4", "max": 1.0}), "parameters.lr: min must be a finite number, got '1e-4'"),
    (_with({"min": 0.0, "max": float("inf")}), "parameters.lr: max must be a finite number"),
    (_with({"values": [1, 2], "probabilities": [0.5, 0.6]}), "parameters.lr: probabilities .* sum to 1"),
    (_with({"values": [1, 2], "probabilities": [1.0]}), "parameters.lr: probabilities has 1 entries"),
    (_with({"values": []}), "parameters.lr: values must be a non-empty list"),
    (_with({"values": 3}), "parameters.lr: values must be a list"),
    (_with({"min": 1}), "parameters.lr: cannot tell the distribution"),
    (_with({"distribution": "uniform", "min": 1}), "parameters.lr: distribution uniform needs max"),
    (_with(0.1), "parameters.lr: must be a mapping"),
    (_with({"parameters": {"inner": {"mu": 1}}}), "parameters.lr.inner: cannot tell the distribution"),
    (_with({"parameters": {"inner": {"value": 1}}, "value": 2}), "parameters.lr: unknown key 'value'"),
    (_with({"parameters": {}}), "parameters.lr.parameters: must be a non-empty mapping"),
    (_with({"min": 0.0, "max": 1.0}, method="grid"),
     "parameters.lr: distribution 'uniform' cannot be used with method 'grid'"),
    (_with({"values": [1, 2], "probabilities": [0.5, 0.5]}, method="grid"),
     "parameters.lr: categorical_w_probabilities works only with method 'random'"),
    (_with({"values": [1, 2], "probabilities": [0.5, 0.5]}, method="bayes"),
     "parameters.lr: categorical_w_probabilities works only with method 'random'"),
    (_with(method="bayes", metric=...), "metric: method 'bayes' needs a metric"),
    (_with(metric=[{"name": "loss"}]), "metric: must be a mapping"),
    (_with(metric={"goal": "minimize"}), "metric: needs a name"),
    (_with(metric={"name": "loss", "goal": "max"}),
     "metric.goal: unknown goal 'max'; allowed: minimize, maximize"),
    (_with(metric={"name": "loss", "impute": "mean"}), "metric.impute: unknown impute 'mean'"),
    (_with(metric={"name": "loss", "impute_while_running": "best"}),
     "metric: key 'impute_while_running' is a W&B server setting"),
    (_with(metric={"name": "loss", "target": "high"}), "metric: target must be a finite number"),
    (_with(early_terminate={"type": "median", "min_iter": 3}), "early_terminate: type must be 'hyperband'"),
    (_with(early_terminate={"type": "hyperband", "min_iter": 3, "eta": 1}), "early_terminate: eta must be"),
    (_with(early_terminate={"type": "hyperband", "min_iter": 0}), "early_terminate: min_iter must be"),
    (_with(early_terminate={"type": "hyperband", "max_iter": 27}),
     "early_terminate: hyperband needs min_iter, or max_iter together with s"),
    (_with(early_terminate={"type": "hyperband", "max_iter": 2, "s": 1}), "early_terminate: .*no bracket"),
    (_with(early_terminate={"type": "hyperband", "min_iter": 3, "strict": "yes"}),
     "early_terminate: strict must be true or false"),
    (_with(early_terminate={"type": "hyperband", "min_iter": 3, "bands": 2}),
     "early_terminate: unknown key 'bands'"),
    (_with(metric=..., early_terminate={"type": "hyperband", "min_iter": 3}),
     "metric: early_terminate needs a metric"),
    (_with(run_cap=0), "run_cap must be a positive integer, got 0"),
    (_with(run_cap="5"), "run_cap must be a positive integer"),
    (_with(paramters={}), "sweep config: unknown key 'paramters'.*did you mean 'parameters'"),
    (_with(entity="me"), "key 'entity' is a W&B server setting Torch Lab does not support"),
    (_with(method="custom"), "method: unknown method 'custom'; allowed: grid, random, bayes"),
    (_with(method=...), "method: is required"),
    (_with(parameters=...), "parameters: is required"),
    (_with(parameters={}), "parameters: must be a non-empty mapping"),
    (_with(command="python train.py"), "command: must be a list of strings"),
    (_with(name=3), "name: must be a string"),
    (_with(parameters={"a.b": {"value": 1}, "a": {"parameters": {"b": {"value": 2}}}}),
     "parameters.a.b: the dotted name is given twice"),
]


@pytest.mark.parametrize("config, message", BAD_CONFIGS)
def test_bad_configs_fail_with_one_line_naming_the_key(config, message):
    with pytest.raises(SweepConfigError, match=message) as info:
        load_spec(config)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unreadable_text_and_missing_files_fail_in_one_line(tmp_path):
    with pytest.raises(SweepConfigError, match="not valid YAML or JSON at line 2") as info:
        load_spec("method: random\n  parameters: [\n")
    assert "\n" not in str(info.value)
    with pytest.raises(SweepConfigError, match="file not found"):
        load_spec(str(tmp_path / "missing.yaml"))
    with pytest.raises(SweepConfigError, match="must be a mapping"):
        load_spec("- just\n- a list\n")
