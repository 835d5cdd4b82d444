"""Resumable training state: the `last` checkpoint, written after every epoch.

    save_last(folder, model, optimizer, generator, meta)   # model + optimizer + RNGs as safetensors, the rest JSON
    tensors, optimizer_meta = last_tensors(model.state_dict(), optimizer, generator)   # for `core.epochfile`
    state = read_last(folder)                     # -> ResumeState, or CheckpointError

Optimizer state is flattened to tensors named `optim.<param index>.<name>` (safetensors holds only
tensors) and hyperparameters go to the JSON; nothing is pickled. Written atomically like the best
checkpoint, so a process killed mid-write leaves the previous epoch's state intact. The training loop
writes it through `core.epochfile.EpochFile`, without an fsync (see `core.checkpoint`), and fsyncs it
when the run ends.
After a power cut during a run, a `last` file that fails its checks gives way to the previous
epoch's version in the spare file, when that one passes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.checkpoint import read_checkpoint, recover_previous, save_checkpoint
from core.errors import CheckpointError

STEM = "last"


@dataclass(frozen=True)
class ResumeState:
    epoch: int                      # last completed epoch
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict                 # a torch optimizer state_dict
    generator: torch.Tensor         # the shuffling generator's state
    meta: dict                      # best metrics, early-stop counter, monitor history, live values
    default_rng: dict[str, torch.Tensor]   # the default generators' states (see default_rng_states)


class _Tensors(torch.nn.Module):
    """Lets save_checkpoint store an arbitrary dict of tensors (it saves a module's state_dict)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.tensors = tensors

    def state_dict(self, *args, **kwargs):  # noqa: D102 - the dict to save
        return self.tensors


def optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """The optimizer's state split into tensors named `optim.<param index>.<name>` (for safetensors)
    and plain JSON (hyperparameters by group, other values by `<param index>.<name>`): what its
    `state_dict()` holds, read from the optimizer directly, without the copies `state_dict` makes
    (optimizer hooks are not run)."""
    tensors, plain, groups, index = {}, {}, [], 0
    for group in optimizer.param_groups:
        groups.append({**{k: v for k, v in group.items() if k != "params"},
                       "params": list(range(index, index + len(group["params"])))})
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value):
                    tensors[f"optim.{index}.{name}"] = value
                else:
                    plain[f"{index}.{name}"] = value
            index += 1
    return tensors, {"param_groups": groups, "scalars": plain}


def optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_last(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              generator: torch.Generator, meta: dict, *, durable: bool = True) -> None:
    tensors, optim_meta = last_tensors(model.state_dict(), optimizer, generator)
    save_checkpoint(folder, _Tensors(tensors), {**meta, "optimizer": optim_meta}, stem=STEM, readable_copy=False,
                    durable=durable)


def last_tensors(model_state: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                 generator: torch.Generator) -> tuple[dict[str, torch.Tensor], dict]:
    """What the `last` checkpoint holds as tensors (the model's state dict, the optimizer's and the
    generators' states; as they are, on their devices), and the optimizer's plain values for its record."""
    tensors = {f"model.{k}": v for k, v in model_state.items()}
    optim, optim_meta = optimizer_parts(optimizer)
    tensors.update(optim)
    tensors["rng.generator"] = generator.get_state()
    tensors.update(default_rng_states(generator.device))
    return tensors, optim_meta


def read_last(folder: Path) -> ResumeState:
    """The resumable state; when `last.safetensors` fails its checks, the newest spare that passes them
    (the previous epoch's) takes its place (`core.checkpoint.recover_previous`)."""
    try:
        tensors, meta = read_checkpoint(folder, STEM)
    except CheckpointError:
        if not has_last(folder) or recover_previous(folder, STEM) is None:
            raise
        tensors, meta = read_checkpoint(folder, STEM)
    model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    default_rng = {k: v for k, v in tensors.items() if k in DEFAULT_RNG_KEYS}
    return ResumeState(meta["epoch"], meta["step"], model, optimizer_state(tensors, meta["optimizer"]),
                       tensors["rng.generator"], meta, default_rng)


def match_parameter_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each loaded state tensor (Adam's moments, momentum buffers) its parameter's memory layout.
    Saved tensors come back contiguous, while a channels-last model's conv weights are not, and the
    fused optimizers pair elements by memory position: with mismatched layouts they would update each
    weight with another weight's moments."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


DEFAULT_RNG_KEYS = ("rng.torch", "rng.cuda")


def default_rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    """The states of the default generators that dropout draws from: the CPU's, and the training
    GPU's. Saved with the shuffling generator, they make a resumed run draw what it would have drawn."""
    states = {"rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["rng.cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_default_rng_states(states: dict[str, torch.Tensor], device: torch.device) -> None:
    """Put back what `default_rng_states` saved; a checkpoint written without them changes nothing."""
    if "rng.torch" in states:
        torch.set_rng_state(states["rng.torch"])
    if "rng.cuda" in states and device.type == "cuda":
        torch.cuda.set_rng_state(states["rng.cuda"], device)


def has_last(folder: Path) -> bool:
    return (Path(folder) / f"{STEM}.safetensors").is_file()
