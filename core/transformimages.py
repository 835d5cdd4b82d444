"""Images in and out of the Transforms explainer: the pictures a pipeline starts from, any stage as
an array to show, and float tensors brought back to 8 bits by rounding or by truncation.

    image = load_sample_photo()                   # or dataset_sample(3, "digits"), open_image(upload_bytes)
    array, note = display_array(stage.output)     # uint8 (H, W) or (H, W, 3); note says if values were rescaled
    cmp = compare_rounding(x)                     # x: a float (C, H, W) tensor in 0..1
    cmp.num_different, cmp.mask                   # how many values rounding and truncation disagree on, where

Rounding to nearest is what `torchvision.utils.save_image` does; truncation is what `ToPILImage` does.
Errors a user can cause raise `core.transforms.TransformError`, one line.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.config import TrainConfig
from core.datasets import load_dataset
from core.errors import InputError
from core.transforms import PipelineResult, TransformError
from core.uploads import MAX_PIXELS, read_upload, to_rgb_or_l

SAMPLE_PHOTO = Path(__file__).resolve().parent / "assets" / "sample_photo.png"


# -- float tensors back to 8 bits ------------------------------------------------------------------

def to_uint8_rounded(x: torch.Tensor) -> torch.Tensor:
    """x in 0..1 -> uint8 by rounding to nearest, as torchvision.utils.save_image does."""
    return x.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)


def to_uint8_truncated(x: torch.Tensor) -> torch.Tensor:
    """x in 0..1 -> uint8 by cutting off the fraction (what ToPILImage does); clamped first."""
    return x.mul(255).clamp(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class RoundingComparison:
    """Both 8-bit versions of a float (C, H, W) tensor, a (1, H, W) mask (255 where any channel
    differs) and the counts over all values."""

    rounded: torch.Tensor
    truncated: torch.Tensor
    mask: torch.Tensor
    num_different: int
    num_values: int
    max_difference: int


def compare_rounding(x: torch.Tensor) -> RoundingComparison:
    rounded, truncated = to_uint8_rounded(x), to_uint8_truncated(x)
    difference = rounded.int() - truncated.int()
    mask = (difference != 0).any(dim=0, keepdim=True).to(torch.uint8) * 255
    return RoundingComparison(rounded, truncated, mask, int((difference != 0).sum()), difference.numel(),
                              int(difference.abs().max()) if difference.numel() else 0)


def rounding_source(result: PipelineResult) -> tuple[torch.Tensor, str] | None:
    """The tensor to bring back to 8 bits: the last float stage, with a final Normalize undone
    (x * std + mean, as done to look at a normalised batch); None when no stage is a float tensor."""
    for stage in reversed(result.stages):
        x = stage.output
        if not (torch.is_tensor(x) and x.is_floating_point()):
            continue
        if stage.name != "Normalize":
            return x, f"stage {stage.index} ({stage.name})"
        params = result.steps[stage.index - 1]["params"]
        mean, std = (torch.tensor(params[k]).view(-1, 1, 1) for k in ("mean", "std"))
        return x * std + mean, f"stage {stage.index} (Normalize) undone: x * std + mean"
    return None


def display_array(x, min_side: int = 160, max_side: int = 1024) -> tuple[np.ndarray, str]:
    """An (H, W) or (H, W, 3) uint8 array to show any stage, and a note when values were rescaled.
    Small images are enlarged by a whole factor (nearest) so their pixels stay crisp."""
    note = ""
    if isinstance(x, Image.Image):
        array = np.asarray(x if x.mode in ("L", "RGB") else x.convert("RGB"))
    else:
        t = x.detach()
        if t.is_floating_point():
            lo, hi = float(t.min()), float(t.max())
            if lo < 0 or hi > 1:
                t, note = (t - lo) / max(hi - lo, 1e-12), f"values {lo:.2f}..{hi:.2f} rescaled to show"
            t = to_uint8_rounded(t)
        array = (t.permute(1, 2, 0) if t.shape[0] == 3 else t[0]).numpy()
    factor = max(1, min(min_side // max(1, min(array.shape[:2])), max_side // max(array.shape[:2])))
    return np.ascontiguousarray(array.repeat(factor, 0).repeat(factor, 1)), note


# -- images to start from --------------------------------------------------------------------------

def load_sample_photo() -> Image.Image:
    """The bundled 320x240 synthetic landscape (generated, not a real photo)."""
    with Image.open(SAMPLE_PHOTO) as image:
        return image.convert("RGB")


def dataset_sample(index: int, dataset: str = "digits") -> tuple[Image.Image, str]:
    """Validation sample `index` of an image dataset, un-normalised to 0..255, and its class name."""
    data = load_dataset(TrainConfig(dataset=dataset))
    count = int(data.val_y.shape[0])
    if not isinstance(index, numbers.Integral) or isinstance(index, bool) or not 0 <= index < count:
        raise TransformError(f"sample index {index!r} is out of range; use 0..{count - 1}")
    info = data.info
    shape = (-1, 1, 1)
    x = data.val_x[index] * torch.tensor(info.std).view(shape) + torch.tensor(info.mean).view(shape)
    array = to_uint8_rounded(x.float().clamp(0, 1))
    image = Image.fromarray(array[0].numpy(), "L") if array.shape[0] == 1 else \
        Image.fromarray(array.permute(1, 2, 0).numpy(), "RGB")
    return image, info.class_names[int(data.val_y[index])]


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Uploaded bytes -> an RGB or L image through core.uploads (the same pixel limit as every other
    upload), or TransformError for the page."""
    try:
        return to_rgb_or_l(read_upload(data, max_pixels))
    except InputError as exc:
        raise TransformError(str(exc)) from None
