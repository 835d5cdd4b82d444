"""Datasets by name, each loaded once into tensors with what a model and a prediction need to know.

    data = load_dataset(TrainConfig(dataset="moons", noise=0.1))
    data.train_x.shape, data.info.class_names, data.info.input_shape

Inputs are float32 and already normalised with the training split's mean and std (kept in `info`
so that raw user input can be brought to the same scale); labels are int64 class indices.
File-backed sets (mnist, fashion-mnist, cifar10, image-folder) live in `core.datafiles`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import torch

from core.config import TrainConfig
from core.errors import DataError
from core.registry import DATASET_NAMES, choose

# The classic template's toy: is x greater than 8? Its exact 18 training and 6 validation numbers.
THRESHOLD_TRAIN = (-2, -1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 18, 20)
THRESHOLD_VALID = (15, 16, 17, 0.1, -3, -4)


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a prediction need to know about a dataset; JSON-friendly."""

    name: str
    kind: str                      # "scalar", "point" or "image"
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]   # one sample, e.g. (1,) or (2,) or (1, 28, 28)
    mean: tuple[float, ...]        # per feature (scalar/point) or per channel (image)
    std: tuple[float, ...]
    image_style: str = ""          # "mnist" (centred light-on-dark digit), "digits" or "natural"
    files: tuple[tuple[str, str], ...] = ()   # (file name, sha256) of the files read
    options: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, values: dict) -> "DatasetInfo":
        tuples = {"class_names", "input_shape", "mean", "std"}
        clean = {k: tuple(v) if k in tuples else v for k, v in values.items() if k != "files"}
        return cls(**clean, files=tuple(tuple(f) for f in values.get("files", ())))


@dataclass(frozen=True)
class TensorData:
    """A dataset as four tensors plus its `DatasetInfo`."""

    info: DatasetInfo
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor

    def to(self, device: torch.device | str) -> "TensorData":
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return replace(self, train_x=move(self.train_x), train_y=move(self.train_y),
                       val_x=move(self.val_x), val_y=move(self.val_y))

    @property
    def num_train(self) -> int:
        return int(self.train_y.shape[0])


DATA_FIELDS = ("dataset", "data_root", "download", "val_fraction", "num_samples", "noise", "max_samples",
               "image_size", "seed")


def load_dataset(config: TrainConfig) -> TensorData:
    """The dataset named by `config.dataset`, split and normalised. Cached per data options."""
    return _load_cached(tuple((name, getattr(config, name)) for name in DATA_FIELDS))


@lru_cache(maxsize=4)
def _load_cached(data_options: tuple) -> TensorData:
    config = TrainConfig(**dict(data_options))
    x, y, info = choose(LOADERS, "dataset", config.dataset)(config)
    return finish_split(x, y, info, config)


def finish_split(x, y, info: DatasetInfo, config: TrainConfig) -> TensorData:
    """Split (x, y) into train/valid (or use a given split), check labels, normalise."""
    if isinstance(x, tuple):                      # loader gave (train, valid) already
        (train_x, val_x), (train_y, val_y) = x, y
    else:
        train_x, train_y, val_x, val_y = split(x, y, config.val_fraction, config.seed)
    check_labels(train_y, val_y, info)
    mean, std = feature_stats(train_x, info.kind)
    info = replace(info, mean=mean, std=std)
    return TensorData(info, normalise(train_x, info), train_y, normalise(val_x, info), val_y)


def split(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int):
    """A seeded random split; the validation part gets round(n * val_fraction) samples, at least 1."""
    n = int(y.shape[0])
    if n < 2:
        raise DataError(f"the dataset has {n} samples; at least 2 are needed to split train/valid")
    num_val = min(n - 1, max(1, round(n * val_fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:num_val], order[num_val:]
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def check_labels(train_y: torch.Tensor, val_y: torch.Tensor, info: DatasetInfo) -> None:
    if train_y.numel() == 0:
        raise DataError(f"dataset {info.name!r} has no training samples")
    labels = torch.cat([train_y, val_y])
    if int(labels.min()) < 0 or int(labels.max()) >= info.num_classes:
        raise DataError(f"dataset {info.name!r}: labels must lie in 0..{info.num_classes - 1}, "
                        f"found {int(labels.min())}..{int(labels.max())}")
    if torch.unique(train_y).numel() < 2:
        raise DataError(f"dataset {info.name!r}: the training split holds a single class; "
                        "a classifier needs at least 2")


def feature_stats(x: torch.Tensor, kind: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std per feature (scalar/point data) or per channel (images)."""
    dims = (0, 2, 3) if kind == "image" else (0,)
    mean = x.double().mean(dim=dims)
    std = x.double().std(dim=dims) if x.shape[0] > 1 else torch.ones_like(mean)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return tuple(mean.tolist()), tuple(std.tolist())


def normalise(x: torch.Tensor, info: DatasetInfo) -> torch.Tensor:
    shape = (1, -1, 1, 1) if info.kind == "image" else (1, -1)
    mean = torch.tensor(info.mean, dtype=torch.float32).view(shape)
    std = torch.tensor(info.std, dtype=torch.float32).view(shape)
    return ((x.float() - mean) / std).contiguous()


# -- the built-in sets ---------------------------------------------------------------------------

def load_threshold(config: TrainConfig):
    """The template's 'is x > 8' toy: 18 training and 6 validation numbers, two classes."""
    def tensors(values):
        x = torch.tensor(values, dtype=torch.float32).view(-1, 1)
        return x, (x[:, 0] > 8).long()
    (tx, ty), (vx, vy) = tensors(THRESHOLD_TRAIN), tensors(THRESHOLD_VALID)
    info = DatasetInfo("threshold", "scalar", ("<= 8", "> 8"), (1,), (), ())
    return (tx, vx), (ty, vy), info


def load_digits(config: TrainConfig):
    """scikit-learn's bundled 8x8 digits (1,797 images, ink 0..16 scaled to 0..1)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.long)
    x, y = cap_samples(x, y, config.max_samples)
    info = DatasetInfo("digits", "image", tuple(str(i) for i in range(10)), (1, 8, 8), (), (),
                       image_style="digits")
    return x, y, info


def load_points(config: TrainConfig):
    """2-D toy sets: moons, circles, spiral, xor, each with `num_samples` points and `noise`."""
    rng = np.random.default_rng(config.seed)
    maker = choose(POINT_MAKERS, "dataset", config.dataset)
    points, labels = maker(config.num_samples, config.noise, rng)
    x = torch.tensor(points, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.long)
    names = tuple(f"class {i}" for i in range(int(y.max()) + 1))
    info = DatasetInfo(config.dataset, "point", names, (2,), (), (),
                       options={"num_samples": config.num_samples, "noise": config.noise})
    return x, y, info


def make_moons(n: int, noise: float, rng: np.random.Generator):
    from sklearn.datasets import make_moons as sk_moons

    return sk_moons(n_samples=n, noise=noise, random_state=int(rng.integers(2**31)))


def make_circles(n: int, noise: float, rng: np.random.Generator):
    from sklearn.datasets import make_circles as sk_circles

    return sk_circles(n_samples=n, noise=noise, factor=0.5, random_state=int(rng.integers(2**31)))


def make_spiral(n: int, noise: float, rng: np.random.Generator):
    """Two interleaved spiral arms, 1.5 turns each; noise is added to the radius angle."""
    labels = np.arange(n) % 2
    t = rng.uniform(0.0, 1.0, n)
    angle = t * 3 * math.pi + labels * math.pi + rng.normal(0.0, noise, n)
    radius = 0.2 + t
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1), labels


def make_xor(n: int, noise: float, rng: np.random.Generator):
    """Points in [-1, 1]^2, label 1 where x*y > 0 (half of each class); noise jitters them afterwards."""
    labels = np.arange(n) % 2
    magnitude = rng.uniform(0.0, 1.0, (n, 2))
    sign_x = rng.choice([-1.0, 1.0], n)
    sign_y = np.where(labels == 1, sign_x, -sign_x)
    points = magnitude * np.stack([sign_x, sign_y], axis=1)
    return points + rng.normal(0.0, noise * 0.5, (n, 2)), labels


def cap_samples(x: torch.Tensor, y: torch.Tensor, max_samples: int | None):
    return (x, y) if max_samples is None else (x[:max_samples], y[:max_samples])


POINT_MAKERS = {"moons": make_moons, "circles": make_circles, "spiral": make_spiral, "xor": make_xor}


def _file_loader(name: str):
    def load(config: TrainConfig):
        from core import datafiles

        return datafiles.LOADERS[name](config)
    load.__doc__ = f"Load {name} from local files (see core.datafiles)."
    return load


LOADERS = {
    "threshold": load_threshold,
    "digits": load_digits,
    **{name: load_points for name in POINT_MAKERS},
    **{name: _file_loader(name) for name in ("mnist", "fashion-mnist", "cifar10", "image-folder")},
}
assert tuple(LOADERS) == DATASET_NAMES
