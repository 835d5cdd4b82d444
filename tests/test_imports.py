"""Uploaded weights: safetensors or weights-only torch files are accepted; hostile files run nothing."""

import contextlib
import io
import json
import os
import pickle
import resource

import pytest
import torch

from core.config import TrainConfig
from core.errors import CheckpointError
from core.config import ConfigError
from core.imports import import_config, import_weights, read_weights
from core.models import build_model
from core.datasets import load_dataset
from core.predict import Predictor
from core.tracker import Store
from tests.hostile import Evil

CONFIG = TrainConfig(dataset="digits", model="mlp", hidden=(16,))


def model_bytes(kind: str) -> tuple[bytes, torch.nn.Module]:
    model = build_model(CONFIG, load_dataset(CONFIG).info)
    buffer = io.BytesIO()
    if kind == "torch":
        torch.save(model.state_dict(), buffer)
        return buffer.getvalue(), model
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in model.state_dict().items()}), model


@pytest.mark.parametrize("kind", ["safetensors", "torch"])
def test_good_weights_become_a_run_that_predicts(kind):
    data, model = model_bytes(kind)
    store = Store()
    run_id = import_weights(store, data, CONFIG, name="mine")
    run = store.get_run(run_id)
    assert run.status.value == "finished" and run.source == "upload"
    predictor = Predictor.from_run(run_id, store)
    x = load_dataset(CONFIG).val_x[:5]
    assert torch.allclose(predictor.probabilities(x), torch.softmax(model(x), dim=1))
    assert store.get_artifact(f"model-{run_id}", "latest").type == "model"


@pytest.mark.parametrize("wrap", ["torch.save", "raw pickle", "nested in a dict"])
def test_a_malicious_pickle_runs_nothing_and_registers_nothing(tmp_path, wrap):
    marker = tmp_path / "pwned"
    payload = Evil(marker)
    buffer = io.BytesIO()
    if wrap == "torch.save":
        torch.save(payload, buffer)
    elif wrap == "raw pickle":
        pickle.dump(payload, buffer)
    else:
        torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": payload}, buffer)
    with pytest.raises(CheckpointError, match="refused"):
        import_weights(Store(), buffer.getvalue(), CONFIG)
    assert not marker.exists()
    assert Store().list_runs() == []


def test_wrong_architecture_truncated_and_junk_are_clear_errors():
    data, _ = model_bytes("safetensors")
    with pytest.raises(CheckpointError, match=r"missing .*wrong shapes"):
        import_weights(Store(), data, TrainConfig(dataset="digits", model="mlp", hidden=(32, 16)))
    for junk in (b"", data[:100], os.urandom(1000), b"PK\x03\x04" + os.urandom(200)):
        with pytest.raises(CheckpointError):
            read_weights(junk)
    nan_state = {k: torch.full_like(v, float("nan")) for k, v in build_model(CONFIG, load_dataset(CONFIG).info)
                 .state_dict().items()}
    buffer = io.BytesIO()
    torch.save(nan_state, buffer)
    with pytest.raises(CheckpointError, match="NaN"):
        import_weights(Store(), buffer.getvalue(), CONFIG)
    assert Store().list_runs() == []


def test_import_config_puts_the_form_choices_over_the_json_fields():
    config = import_config('{"hidden": [32, 16], "dataset": "moons"}', "digits", "mlp")
    assert (config.dataset, config.model, config.hidden) == ("digits", "mlp", (32, 16))
    assert import_config("", "threshold", "logreg") == TrainConfig(dataset="threshold", model="logreg")
    with pytest.raises(ValueError):
        import_config("{hidden: 3}", "digits", "mlp")                   # not JSON
    with pytest.raises(ConfigError, match="lr"):
        import_config('{"lr": -1}', "digits", "mlp")
    with pytest.raises(TypeError):
        import_config("[1, 2]", "digits", "mlp")                         # JSON, but not an object


# -- sizes, server paths and the hosted demo ---------------------------------------------------------

@contextlib.contextmanager
def address_space_cap(extra_bytes: int = 2**30):
    """Let this process map at most `extra_bytes` more memory while inside: building a model of
    gigabytes then fails at once instead of filling the machine."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (int(status["VmSize"].split()[0]) * 1024 + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("dataset,model,extra", [
    ("digits", "mlp", {}), ("digits", "mlp", {"hidden": (7, 5, 3), "activation": "tanh"}),
    ("moons", "mlp", {"hidden": (64,)}), ("threshold", "logreg", {}), ("digits", "logreg", {}),
    ("digits", "cnn", {}), ("digits", "cnn", {"width": 5})])
def test_parameter_count_from_the_config_matches_the_built_model(dataset, model, extra):
    from core.models import count_parameters as count_built, planned_parameters

    config = TrainConfig(dataset=dataset, model=model, **extra)
    info = load_dataset(config).info
    assert planned_parameters(config, info) == count_built(build_model(config, info))


@pytest.mark.parametrize("demo", [False, True])
def test_a_huge_config_is_refused_from_arithmetic_before_any_model_is_built(monkeypatch, demo):
    """16 layers of 65,536 units: about 6 x 10^10 parameters (256 GB). Refused with one line, in a hosted
    demo by its model-size cap and otherwise because the upload cannot hold them, without allocating."""
    if demo:
        monkeypatch.setenv("LAB_DEMO", "1")
    data, _ = model_bytes("safetensors")
    huge = TrainConfig(dataset="digits", model="mlp", hidden=(65536,) * 16)
    expected = r"over the demo's cap of 300,000" if demo else r"more than the [\d,]+ bytes uploaded can hold"
    with address_space_cap(), pytest.raises(ValueError, match=r"^model: .*" + expected) as caught:
        import_weights(Store(), data, huge)
    assert "\n" not in str(caught.value) and Store().list_runs() == []


def test_a_hosted_demo_accepts_no_server_path_and_no_file_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DEMO", "1")
    data, _ = model_bytes("safetensors")
    with pytest.raises(ConfigError, match="^data_root: server folders .* not available in the demo"):
        import_weights(Store(), data, CONFIG.replace(data_root=str(tmp_path)))
    with pytest.raises(ConfigError, match="^dataset: 'mnist' is not available in the demo"):
        import_weights(Store(), data, TrainConfig(dataset="mnist", model="mlp", data_root=str(tmp_path)))
    assert Store().list_runs() == []
    assert Store().get_run(import_weights(Store(), data, CONFIG)).status.value == "finished"


@pytest.mark.parametrize("root,expected", [
    ("~nobodyxyz/x", "'~nobodyxyz/x'"), ("data\x00root", "NUL byte"), ("x" * 5000, "5000"),
    ("/" + "y" * 1000, "y" * 30),                                       # one name longer than 255 bytes
    ("/no/such/folder", "'/no/such/folder' is not a folder on this server")])
def test_bad_data_roots_get_one_line_naming_the_field(root, expected):
    """As typed into the import form's JSON: refused with one line naming data_root and the value."""
    data, _ = model_bytes("safetensors")
    with pytest.raises(ValueError) as caught:
        import_weights(Store(), data, import_config(json.dumps({"data_root": root}), "digits", "mlp"))
    message = str(caught.value)
    assert message.startswith("data_root") and expected in message, message
    assert "\n" not in message and len(message) < 300
    assert Store().list_runs() == []
