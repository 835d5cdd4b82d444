"""Checkpoints: weights as safetensors plus a JSON file (config, dataset info, metrics), written
atomically (temporary file, flush, fsync, rename) so a crash never leaves a half-written file.

    save_checkpoint(folder, model, meta)           # folder/best.safetensors + folder/best.json
    model, meta = load_model(folder)               # rebuilt from the stored config, strict keys

The JSON records the SHA-256 of the weights it belongs to; loading checks it, so a crash between
the two renames is caught instead of pairing new metadata with old weights. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from core.errors import CheckpointError

FORMAT_VERSION = 1


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def weights_bytes(model: torch.nn.Module) -> bytes:
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(state)


def save_checkpoint(folder: Path, model: torch.nn.Module, meta: dict, stem: str = "best") -> Path:
    """Save weights and `meta` (must hold "config" and "dataset") as `stem`.safetensors/.json."""
    blob = weights_bytes(model)
    record = {**meta, "format_version": FORMAT_VERSION,
              "weights_sha256": hashlib.sha256(blob).hexdigest()}
    weights_path = Path(folder) / f"{stem}.safetensors"
    atomic_write(weights_path, blob)
    atomic_write(Path(folder) / f"{stem}.json", json.dumps(record, indent=1).encode())
    return weights_path


def read_checkpoint(folder: Path, stem: str = "best") -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, meta) of a saved checkpoint; CheckpointError when missing, corrupt or mismatched."""
    weights_path, meta_path = Path(folder) / f"{stem}.safetensors", Path(folder) / f"{stem}.json"
    if not weights_path.is_file() or not meta_path.is_file():
        raise CheckpointError(f"no checkpoint in {folder} (the run has not finished an epoch yet?)")
    blob = weights_path.read_bytes()
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint metadata {meta_path} is corrupt: {exc}") from None
    if meta.get("weights_sha256") != hashlib.sha256(blob).hexdigest():
        raise CheckpointError(f"checkpoint weights in {folder} do not match their metadata (checksum)")
    return parse_weights(blob, str(weights_path)), meta


def parse_weights(blob: bytes, label: str) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{label} is not a valid safetensors file: {exc}") from None


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load `state` strictly; list missing, unexpected and mis-shaped keys in one message."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or extra or shapes:
        parts = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "",
                 f"wrong shapes {shapes}" if shapes else ""]
        raise CheckpointError("weights do not fit the model: " + "; ".join(p for p in parts if p))
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise CheckpointError("weights hold NaN or infinite values")
    model.load_state_dict(state, strict=True)


def load_model(folder: Path, stem: str = "best") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model from a checkpoint's stored config and dataset info; eval mode, on CPU."""
    from core.config import TrainConfig
    from core.datasets import DatasetInfo
    from core.models import build_model

    state, meta = read_checkpoint(folder, stem)
    try:
        config = TrainConfig.from_dict(meta["config"])
        info = DatasetInfo.from_dict(meta["dataset"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata in {folder} is incomplete: {exc}") from None
    model = build_model(config, info)
    load_into(model, state)
    return model.eval(), meta
