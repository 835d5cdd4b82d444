"""Checkpoints: one safetensors file per checkpoint, holding the weights and, in its metadata header,
the JSON record (config, dataset info, metrics); written atomically (temporary file, flush, rename),
so a crash leaves either the old checkpoint or the new one, never a mix or a half file.

    save_checkpoint(folder, model, meta)           # folder/best.safetensors (+ best.json, a readable copy)
    save_checkpoint(folder, model, meta, readable_copy=False, durable=False)   # the training loop, per epoch
    settle_checkpoints(folder, ["best", "last"])   # at a run's end: best.json, and both files fsynced
    model, meta = load_model(folder)               # rebuilt from the stored config, strict keys

Durability: a write with `durable` is fsynced before its rename and survives a power cut. The training
loop's per-epoch writes are not: like the store's commits (SQLite WAL with synchronous=NORMAL), they
survive a killed process, which is what resuming needs, and an fsync would cost more than the rest of
the write. `settle_checkpoints` fsyncs them once when the run ends.

The record carries a SHA-256 over the tensors' bytes, checked on loading, so flipped bytes are caught.
Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from safetensors import SafetensorError, TensorSpec, serialize
from safetensors.torch import load as load_safetensors

from core.errors import CheckpointError

FORMAT_VERSION = 1


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename; with
    `durable`, the data is fsynced before the rename (it survives a power cut, not only a kill)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clean_leftovers(folder: Path, older_than_s: float = 0.0) -> int:
    """Remove temporary files a killed writer left in `folder` (never the finished files); with
    `older_than_s`, only those untouched that long, so that a write in progress elsewhere is spared."""
    removed, now = 0, time.time()
    for leftover in Path(folder).glob(".*.tmp") if Path(folder).is_dir() else ():
        try:
            if older_than_s and now - leftover.stat().st_mtime < older_than_s:
                continue
            leftover.unlink()
        except FileNotFoundError:                  # its writer finished or cleaned it meanwhile
            continue
        removed += 1
    return removed


def clean_store_leftovers(home: Path, older_than_s: float = 600.0) -> int:
    """Temporary files killed writers left among the artifact blobs under a lab folder `home`."""
    artifacts = Path(home) / "artifacts"
    folders = [f for f in artifacts.iterdir() if f.is_dir()] if artifacts.is_dir() else []
    return sum(clean_leftovers(folder, older_than_s) for folder in folders)


META_KEY = "torch_lab"


def _bytes_of(tensor: torch.Tensor):
    """A CPU contiguous tensor's bytes as a uint8 array (no copy; bfloat16 and bool included)."""
    return tensor.reshape(-1).view(torch.uint8).numpy()


def tensors_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the tensors, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(_bytes_of(tensor))
    return digest.hexdigest()


def pack(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """`state` (CPU, contiguous tensors) and `metadata` as the bytes of one safetensors file. It hands
    the tensors' memory to the safetensors serializer directly: `safetensors.torch.save` goes through
    a NumPy array per tensor first, which costs about 30 µs a tensor, most of a small model's save."""
    for name, t in state.items():
        if t.device.type != "cpu" or not t.is_contiguous() or t.is_sparse:
            raise ValueError(f"tensor {name!r} must be dense, contiguous and on the CPU to be saved")
    specs = {name: TensorSpec(dtype=str(t.dtype).removeprefix("torch."), shape=list(t.shape),
                              data_ptr=t.data_ptr(), data_len=t.numel() * t.element_size())
             for name, t in state.items()}
    return bytes(serialize(specs, metadata=metadata))    # `state` keeps every pointer valid meanwhile


def save_checkpoint(folder: Path, model: torch.nn.Module, meta: dict, stem: str = "best", *,
                    readable_copy: bool = True, durable: bool = True) -> Path:
    """Save weights with `meta` (must hold "config" and "dataset") as `stem`.safetensors, one file;
    with `readable_copy`, the record also as `stem`.json for people (never read back, so not fsynced).
    `durable=False` skips the fsync (see the module's docstring)."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    record = json.dumps({**meta, "format_version": FORMAT_VERSION, "tensors_sha256": tensors_digest(state)})
    weights_path = Path(folder) / f"{stem}.safetensors"
    atomic_write(weights_path, pack(state, {META_KEY: record}), durable=durable)
    if readable_copy:
        atomic_write(Path(folder) / f"{stem}.json", record.encode(), durable=False)
    return weights_path


def settle_checkpoints(folder: Path, stems: list[str], readable: str = "best") -> None:
    """At the end of a run: write `readable`.json from the record inside `readable`.safetensors, then
    fsync each existing `stem`.safetensors and the folder. Missing files are skipped."""
    folder = Path(folder)
    source = folder / f"{readable}.safetensors"
    if source.is_file():
        with source.open("rb") as handle:
            head = handle.read(8)
            claimed = min(int.from_bytes(head, "little"), source.stat().st_size)    # read_header checks it
            header = read_header(head + handle.read(claimed), str(source))
        record = (header.get("__metadata__") or {}).get(META_KEY)
        if record is not None:
            atomic_write(folder / f"{readable}.json", record.encode(), durable=False)
    for path in [folder / f"{stem}.safetensors" for stem in stems]:
        if path.is_file():
            _fsync_path(path, os.O_RDONLY)
    if folder.is_dir():
        _fsync_path(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync_path(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_header(blob: bytes, label: str) -> dict:
    """The JSON header of a safetensors file (its first 8 bytes give the header's length)."""
    if len(blob) < 8:
        raise CheckpointError(f"{label} is not a valid safetensors file: only {len(blob)} bytes")
    size = int.from_bytes(blob[:8], "little")
    if size > len(blob) - 8:
        raise CheckpointError(f"{label} is not a valid safetensors file: header claims {size} bytes")
    try:
        return json.loads(blob[8:8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{label} is not a valid safetensors file: header is not JSON ({exc})") from None


def read_checkpoint(folder: Path, stem: str = "best") -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, meta) of a saved checkpoint; CheckpointError when missing, corrupt or mismatched."""
    path = Path(folder) / f"{stem}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {folder} (the run has not finished an epoch yet?)")
    blob = path.read_bytes()
    header = read_header(blob, str(path))
    state = parse_weights(blob, str(path))
    try:
        meta = json.loads((header.get("__metadata__") or {})[META_KEY])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{path} holds no Torch Lab record (config and dataset)") from None
    if meta.get("tensors_sha256") != tensors_digest(state):
        raise CheckpointError(f"{path} is corrupt: its weights do not match their recorded checksum")
    return state, meta


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
