"""Models by name, built from a dataset's input shape and class count.

    model = build_model(config, info)     # info: core.datasets.DatasetInfo
    planned_parameters(config, info)      # its parameter count, worked out without building it

- `mlp`: the template's stack of Linear + activation, hidden sizes from `config.hidden` (default 32,16).
- `cnn`: conv(3x3) - maxpool - relu - conv(5x5) - maxpool - relu - dropout - global max-pool -
  linear - relu - linear, with `config.width` channels and `config.dropout` (the template's MNIST net,
  with the activations it left out). Inputs smaller than 16 px use 'same' padding so 8x8 digits fit.
  Each max-pool comes before its ReLU: the two commute (ReLU is monotone), so outputs and gradients
  are the same, and the ReLU runs over a tensor four times smaller.
- `dropout` acts in the `cnn` only; `mlp` and `logreg` have none.
- `logreg`: one linear layer over the flattened input.
"""

from __future__ import annotations

import math

from torch import nn

from core.config import TrainConfig
from core.datacheck import cnn_needs_images
from core.datasets import DatasetInfo
from core.errors import DataError
from core.registry import MODEL_NAMES, choose

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid,
               "leaky_relu": nn.LeakyReLU}


def build_mlp(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    sizes = (math.prod(info.input_shape), *config.hidden)
    layers: list[nn.Module] = [nn.Flatten()]
    for size_in, size_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(size_in, size_out), ACTIVATIONS[config.activation]()]
    layers.append(nn.Linear(sizes[-1], info.num_classes))
    return nn.Sequential(*layers)


class GlobalMaxPool(nn.Module):
    """Each channel's maximum over its whole map, (N, C, H, W) -> (N, C, 1, 1): what
    `AdaptiveMaxPool2d(1)` computes, through `amax`, whose backward is deterministic on a GPU too
    (adaptive max-pooling has no deterministic CUDA backward, so a `deterministic` run on a GPU would
    stop at its first step). Where a map holds its maximum more than once, amax shares the gradient
    among the tied positions, where the adaptive pool gives it all to one of them."""

    def forward(self, x):
        return x.amax(dim=(2, 3), keepdim=True)


def build_cnn(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    if info.kind != "image":
        raise DataError(cnn_needs_images(info.name, info.kind))
    channels, height, width_px = info.input_shape
    small = min(height, width_px) < 16
    w = config.width
    return nn.Sequential(
        nn.Conv2d(channels, w, kernel_size=3, padding=1 if small else 0),   # (N, w, H', W')
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
        nn.Conv2d(w, w, kernel_size=5, padding=2 if small else 0),
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
        nn.Dropout2d(config.dropout),
        GlobalMaxPool(),                                                    # (N, w, 1, 1)
        nn.Flatten(),
        nn.Linear(w, w),
        nn.ReLU(inplace=True),
        nn.Linear(w, info.num_classes),
    )


def build_logreg(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(info.input_shape), info.num_classes))


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn, "logreg": build_logreg}
assert tuple(BUILDERS) == MODEL_NAMES


def build_model(config: TrainConfig, info: DatasetInfo) -> nn.Module:
    """The model named by `config.model`, sized for `info`."""
    return choose(BUILDERS, "model", config.model)(config, info)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def planned_parameters(config: TrainConfig, info: DatasetInfo) -> int:
    """The number of parameters `build_model(config, info)` would have, worked out without building it."""
    return choose(PARAMETER_COUNTS, "model", config.model)(config, info)


def _linear(size_in: int, size_out: int) -> int:
    return size_in * size_out + size_out                  # weight and bias


def _count_mlp(config: TrainConfig, info: DatasetInfo) -> int:
    sizes = (math.prod(info.input_shape), *config.hidden, info.num_classes)
    return sum(_linear(a, b) for a, b in zip(sizes, sizes[1:]))


def _count_cnn(config: TrainConfig, info: DatasetInfo) -> int:
    channels, w = info.input_shape[0], config.width
    convs = (channels * 9 + 1) * w + (w * 25 + 1) * w     # 3x3 then 5x5 convolutions, with biases
    return convs + _linear(w, w) + _linear(w, info.num_classes)


def _count_logreg(config: TrainConfig, info: DatasetInfo) -> int:
    return _linear(math.prod(info.input_shape), info.num_classes)


PARAMETER_COUNTS = {"mlp": _count_mlp, "cnn": _count_cnn, "logreg": _count_logreg}
assert tuple(PARAMETER_COUNTS) == MODEL_NAMES
