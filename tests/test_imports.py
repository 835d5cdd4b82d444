"""Uploaded weights: safetensors or weights-only torch files are accepted; hostile files run nothing."""

import io
import os
import pickle

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
