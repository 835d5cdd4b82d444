"""File-backed datasets: MNIST and Fashion-MNIST (IDX files), CIFAR-10, and a folder of class folders.

Files are read from `--data-root ROOT` or `$LAB_HOME/data`, in torchvision's layout
(`ROOT/MNIST/raw/t10k-images-idx3-ubyte.gz`, `ROOT/FashionMNIST/raw/...`, `ROOT/cifar-10-batches-py/`).
MNIST works with only the t10k files (the test split is then split into train/valid); with the
training files present, train comes from them and valid from t10k. Downloads happen only with
`download=True`, through torchvision, and a failed one says which folder to fill by hand.
torchvision is imported only here, and only for CIFAR-10 or a download.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from core.config import TrainConfig
from core.datacheck import IDX_FOLDERS, find_idx, idx_files_missing, idx_raw_dir
from core.datasets import DatasetInfo, cap_samples
from core.errors import DataError
from core.paths import data_root, sha256_file

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
IDX_DTYPE = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into an array, checking its header against its size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPE:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise DataError(f"{path} is truncated or corrupt: header says {dims}, file holds "
                        f"{len(raw) - offset} values")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_idx_split(raw_dir: Path, split: str):
    """(images as float (N,1,28,28) in 0..1, labels, files) of one split, or None when absent."""
    images = find_idx(raw_dir, f"{split}-images-idx3-ubyte")
    labels = find_idx(raw_dir, f"{split}-labels-idx1-ubyte")
    if images is None or labels is None:
        return None
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise DataError(f"{raw_dir}: {split} images {x.shape} and labels {y.shape} do not match")
    tensor_x = torch.from_numpy(x.copy()).unsqueeze(1).float().div_(255.0)
    files = tuple((p.name, sha256_file(p)) for p in (images, labels))
    return tensor_x, torch.from_numpy(y.astype(np.int64)), files


def load_idx_dataset(config: TrainConfig):
    """MNIST or Fashion-MNIST from IDX files; see the module docstring for which split is used."""
    root = data_root(config.data_root)
    raw_dir = idx_raw_dir(config)
    test = load_idx_split(raw_dir, "t10k")
    if test is None and config.download:
        download_torchvision(config.dataset, root)
        test = load_idx_split(raw_dir, "t10k")
    if test is None:
        raise DataError(idx_files_missing(config.dataset, raw_dir))
    train = load_idx_split(raw_dir, "train")
    names = FASHION_CLASSES if config.dataset == "fashion-mnist" else tuple(str(i) for i in range(10))
    style = "mnist" if config.dataset == "mnist" else "natural"
    if train is None:
        x, y = cap_samples(test[0], test[1], config.max_samples)
        info = DatasetInfo(config.dataset, "image", names, (1, 28, 28), (), (), style, test[2])
        return x, y, info
    tx, ty = cap_samples(train[0], train[1], config.max_samples)
    info = DatasetInfo(config.dataset, "image", names, (1, 28, 28), (), (), style, train[2] + test[2])
    return (tx, test[0]), (ty, test[1]), info


def load_cifar10(config: TrainConfig):
    """CIFAR-10 from `ROOT/cifar-10-batches-py` through torchvision (which checks the files' MD5)."""
    from torchvision.datasets import CIFAR10

    root = data_root(config.data_root)
    try:
        parts = [CIFAR10(str(root), train=train, download=config.download) for train in (True, False)]
    except RuntimeError as exc:
        raise DataError(f"cifar10 files not found or corrupt in {root / 'cifar-10-batches-py'} ({exc}); "
                        "put the python version of CIFAR-10 there, or use --download") from None
    except OSError as exc:
        raise DataError(f"cifar10 download failed ({exc}); put the files in "
                        f"{root / 'cifar-10-batches-py'} by hand") from None
    xs = [torch.from_numpy(p.data).permute(0, 3, 1, 2).float().div_(255.0) for p in parts]
    ys = [torch.tensor(p.targets, dtype=torch.long) for p in parts]
    xs[0], ys[0] = cap_samples(xs[0], ys[0], config.max_samples)
    info = DatasetInfo("cifar10", "image", CIFAR_CLASSES, (3, 32, 32), (), (), "natural")
    return tuple(xs), tuple(ys), info


def load_image_folder(config: TrainConfig):
    """A folder whose subfolders are classes, each holding images; resized to image_size square."""
    from PIL import Image, ImageOps

    if not config.data_root:
        raise DataError("image-folder needs --data-root: a folder with one subfolder of images per class")
    root = data_root(config.data_root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(classes) < 2:
        raise DataError(f"{root} must hold at least 2 class subfolders of images, found {len(classes)}")
    images, labels = [], []
    size = (config.image_size, config.image_size)
    for index, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            try:
                with Image.open(path) as img:
                    rgb = ImageOps.exif_transpose(img).convert("RGB").resize(size)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise DataError(f"cannot read image {path}: {exc}") from None
            images.append(np.asarray(rgb))
            labels.append(index)
    if not images:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
    x, y = cap_samples(x, torch.tensor(labels), config.max_samples)
    info = DatasetInfo("image-folder", "image", tuple(classes), (3, *size), (), (), "natural")
    return x, y, info


def download_torchvision(name: str, root: Path) -> None:
    """Fetch a dataset with torchvision; a network failure becomes a DataError naming the folder."""
    from torchvision import datasets as tv

    cls = {"mnist": tv.MNIST, "fashion-mnist": tv.FashionMNIST}[name]
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except (OSError, RuntimeError) as exc:
        raise DataError(f"could not download {name} ({exc.__class__.__name__}: {exc}); copy its files "
                        f"into {root / IDX_FOLDERS[name] / 'raw'} instead") from None


LOADERS = {"mnist": load_idx_dataset, "fashion-mnist": load_idx_dataset, "cifar10": load_cifar10,
           "image-folder": load_image_folder}
