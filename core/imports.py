"""Importing weights a user uploads, without running anyone's code.

    run_id = import_weights(store, data, TrainConfig(dataset="digits", model="mlp"), name="mine")
    config = import_config('{"hidden": [32, 16]}', "digits", "mlp")    # the page's form as a config

Accepted: a safetensors file, or a PyTorch file holding a plain state dict of tensors, read with
`torch.load(weights_only=True)` and never with a fallback to full unpickling, so a malicious pickle
is refused before it can do anything. The weights must fit the model the config describes exactly
(missing, unexpected and mis-shaped keys are listed); only then is a run registered, with the
weights as its best checkpoint and a `model` artifact.

Before any model is built, its parameter count is worked out from the config (`core.models.planned_parameters`):
a model that could not fit in the uploaded bytes is refused without allocating it, and in a hosted
demo (`LAB_DEMO=1`) the demo's caps apply and no server folder (`data_root`) is accepted.
"""

from __future__ import annotations

import io
import json

import torch

from core.checkpoint import load_into, parse_weights, save_checkpoint
from core.config import ConfigError, TrainConfig
from core.errors import CheckpointError, first_line
from core.paths import PathError, data_root
from core.status import RunStatus

MAX_WEIGHTS_BYTES = 200 * 2**20


def read_weights(data: bytes) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or weights-only torch bytes; CheckpointError for anything else."""
    if not data:
        raise CheckpointError("the file is empty")
    if len(data) > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"the file has {len(data):,} bytes; the limit is {MAX_WEIGHTS_BYTES:,}")
    if looks_like_safetensors(data):
        return parse_weights(data, "the upload")
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for hostile or broken input; none may pass
        raise CheckpointError("refused: not safetensors, and not a weights-only PyTorch file "
                              f"({type(exc).__name__}: {first_line(exc, 300)})") from None
    return state_dict_of(loaded)


def looks_like_safetensors(data: bytes) -> bool:
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
    return 0 < size <= len(data) - 8 and data[8:9] == b"{"


def state_dict_of(loaded) -> dict[str, torch.Tensor]:
    """The tensors of a loaded object: a state dict, or one nested under 'state_dict' / 'model'."""
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not loaded or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in loaded.items()):
        raise CheckpointError("the file does not hold a state dict of named tensors")
    return dict(loaded)


def import_config(extra_json: str, dataset: str, model: str) -> TrainConfig:
    """The config of imported weights: `dataset` and `model` over other fields given as a JSON object
    (empty text: none). Bad JSON raises ValueError, a bad field ConfigError (a ValueError), and JSON
    that is not an object TypeError."""
    return TrainConfig(**{**json.loads(extra_json or "{}"), "dataset": dataset, "model": model})


def import_weights(store, data: bytes, config: TrainConfig, name: str | None = None) -> str:
    """Check uploaded weights against `config`'s model, then register them as a finished run."""
    from core.demo import check_demo, demo_limits
    from core.models import build_model, planned_parameters
    from core.runs import environment, log_model_artifact, prepare_data
    from core.training import Outcome

    limits = demo_limits()
    check_demo(config, limits)                            # a hosted demo reads no server folder
    check_data_root(config)
    state = read_weights(data)
    info = prepare_data(config).info
    num_parameters = planned_parameters(config, info)      # arithmetic: nothing allocated yet
    check_demo(config, limits, num_parameters)
    check_fits_upload(num_parameters, len(data))
    model = build_model(config, info)
    load_into(model, state)                               # lists every mismatch; nothing stored yet
    run_id = store.create_run(config.to_dict(), name=name or "imported weights", source="upload",
                              environment=environment())
    path = save_checkpoint(store.run_folder(run_id), model, {"config": config.to_dict(),
                                                              "dataset": info.to_dict(), "epoch": 0})
    outcome = Outcome(RunStatus.FINISHED, "imported", 0, 0, None, None, str(path))
    artifact = log_model_artifact(store, run_id, outcome)
    store.finish_run(run_id, RunStatus.FINISHED, "weights imported from an upload",
                     summary={"checkpoint": str(path), "model_artifact": artifact.label})
    return run_id


def check_data_root(config: TrainConfig) -> None:
    """A one-line user error naming `data_root` unless it is unset or an existing folder (or one a
    download may create): `~nobody/x`, NUL bytes and overlong paths never reach a traceback."""
    value = config.data_root
    if not value:
        return
    shown = repr(value) if len(value) <= 60 else f"{value[:40]!r}... ({len(value)} characters)"
    try:
        folder = data_root(value)                         # PathError, naming data_root, for unusable text
        usable = config.download or folder.is_dir()
    except PathError:
        raise
    except (RuntimeError, OSError, ValueError) as exc:
        raise ConfigError(f"data_root: {shown} cannot be used ({first_line(exc)})") from None
    if not usable:
        raise ConfigError(f"data_root: {shown} is not a folder on this server")


def check_fits_upload(num_parameters: int, num_bytes: int) -> None:
    """CheckpointError when the config's model has more parameters than the upload has bytes: every
    stored value takes at least one byte, so such weights can never fit, and building the model
    (perhaps gigabytes) is skipped."""
    if num_parameters > num_bytes:
        raise CheckpointError(f"model: the config describes {num_parameters:,} parameters, more than the "
                              f"{num_bytes:,} bytes uploaded can hold; give the hidden sizes or width "
                              "the weights were trained with")
