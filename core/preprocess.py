"""Raw user input -> a model-ready batch of one, the way each dataset expects it.

    x = prepare_input(info, 24)                 # threshold: a number
    x = prepare_input(info, (0.3, -1.2))        # 2-D sets: a point
    x = prepare_input(info, pil_image)          # image sets: any size or mode

Images: MNIST-style sets get what MNIST did to its digits: light ink on a dark background (a
dark-on-light drawing is inverted), the digit's bounding box scaled to fit 20x20 keeping its aspect,
pasted into 28x28 with its centre of mass at the centre. `digits` is scaled to fill 8x8 the same way.
Natural images are converted to the channel count and resized to the input size. All are then
normalised with the training split's mean and std stored in `info`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from core.datasets import DatasetInfo, normalise
from core.errors import InputError

INK_THRESHOLD = 0.1


def prepare_input(info: DatasetInfo, raw) -> torch.Tensor:
    """A (1, *input_shape) float tensor for the model, or InputError saying what was expected."""
    if info.kind == "scalar":
        return normalise(torch.tensor([[_finite(raw, "a number")]], dtype=torch.float32), info)
    if info.kind == "point":
        if not isinstance(raw, (tuple, list)) or len(raw) != 2:
            raise InputError(f"{info.name} expects a point x,y; got {raw!r}")
        point = [_finite(v, "a point x,y") for v in raw]
        return normalise(torch.tensor([point], dtype=torch.float32), info)
    return normalise(image_to_tensor(raw, info).unsqueeze(0), info)


def _finite(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected {what}, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"expected a finite number, got {value!r}")
    return number


def image_to_tensor(image, info: DatasetInfo) -> torch.Tensor:
    """A PIL image -> (C, H, W) float tensor in 0..1 shaped like the dataset's samples."""
    from PIL import Image, ImageOps

    if not isinstance(image, Image.Image):
        raise InputError(f"{info.name} expects an image, got {type(image).__name__}")
    channels, height, width = info.input_shape
    image = ImageOps.exif_transpose(image)
    if info.image_style in ("mnist", "digits"):
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        box = 20 if info.image_style == "mnist" else height
        return torch.from_numpy(centre_digit(gray, (height, width), box)).unsqueeze(0)
    mode = "L" if channels == 1 else "RGB"
    resized = image.convert(mode).resize((width, height), Image.BILINEAR)   # PIL takes (w, h)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


def centre_digit(gray: np.ndarray, size: tuple[int, int], box: int) -> np.ndarray:
    """MNIST's recipe on a 2-D array in 0..1: light ink, fit the ink's bounding box into `box`
    pixels, place its centre of mass at the centre of a `size` canvas. Blank input stays blank."""
    from PIL import Image

    if gray.mean() > 0.5:                      # dark ink on a light background: invert
        gray = 1.0 - gray
    ink = gray > INK_THRESHOLD * max(gray.max(), 1e-6)
    if not ink.any() or gray.max() <= 0.05:
        return np.zeros(size, dtype=np.float32)
    rows, cols = np.nonzero(ink)
    crop = gray[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    scale = box / max(crop.shape)
    new_h, new_w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((new_w, new_h), Image.LANCZOS),
                       dtype=np.float32) / 255.0
    canvas = np.zeros(size, dtype=np.float32)
    cy, cx = centre_of_mass(small)
    top = int(round(size[0] / 2 - cy))
    left = int(round(size[1] / 2 - cx))
    top, left = min(max(top, 0), size[0] - new_h), min(max(left, 0), size[1] - new_w)
    canvas[top: top + new_h, left: left + new_w] = small
    return canvas


def centre_of_mass(array: np.ndarray) -> tuple[float, float]:
    total = array.sum()
    if total <= 0:
        return (array.shape[0] - 1) / 2, (array.shape[1] - 1) / 2
    rows, cols = np.indices(array.shape)
    return float((rows * array).sum() / total), float((cols * array).sum() / total)
