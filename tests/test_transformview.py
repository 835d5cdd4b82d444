"""core.transformview: the Transforms page's pipeline edits, image sources, stage tiles and rounding text."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core import transforms as tf
from core.transformview import (dataset_source, edit_steps, photo_source, rounding_summary, stage_tiles, step_title,
                                upload_source)

S = tf.new_step


def test_edits_return_a_new_pipeline_and_leave_the_old_one_alone():
    steps = [S("Resize"), S("ToTensor"), S("Normalize")]
    before = [dict(s) for s in steps]
    assert [s["name"] for s in edit_steps(steps, "move", 2, -1)] == ["Resize", "Normalize", "ToTensor"]
    assert [s["name"] for s in edit_steps(steps, "remove", 0)] == ["ToTensor", "Normalize"]
    added = edit_steps(steps, "add", arg="GaussianBlur")
    assert added[-1] == S("GaussianBlur") and len(added) == 4
    preset = edit_steps(steps, "preset", 2, "0.5 (any channels)")[2]
    assert preset == {"name": "Normalize", "params": {"mean": [0.5], "std": [0.5]}}
    assert steps == before
    with pytest.raises(ValueError, match="move, remove, add, preset"):
        edit_steps(steps, "shuffle")


def test_step_titles_number_from_one_and_mark_random_steps():
    assert step_title(0, tf.STEP_SPECS["ToTensor"]) == \
        "**1. ToTensor**: PIL (w, h) uint8 0..255 -> tensor (C, H, W) float 0..1"
    assert step_title(2, tf.STEP_SPECS["RandomVerticalFlip"]) == \
        "**3. RandomVerticalFlip** (random): mirror top-bottom with probability p"


def test_image_sources_come_with_their_captions():
    photo, caption = photo_source()
    assert photo.size == (320, 240) and caption == "The bundled sample photo (synthetic)."
    digit, caption = dataset_source(0, "digits")
    assert digit.size == (8, 8) and caption.startswith("digits validation sample 0, class ")
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 500), "red").save(buffer, format="PNG")
    image, caption = upload_source(buffer.getvalue())
    assert image.size == (1024, 256) and "scaled from (w, h) = (2000, 500)" in caption
    buffer = io.BytesIO()
    Image.new("L", (20, 10)).save(buffer, format="PNG")
    assert upload_source(buffer.getvalue())[1] == "The uploaded image."
    with pytest.raises(tf.TransformError):
        upload_source(b"not an image")


def test_stage_tiles_caption_every_stage_with_its_type_and_shape():
    image = Image.new("RGB", (6, 4), (255, 0, 0))
    result = tf.run_pipeline(image, [S("ToTensor"), S("Normalize", mean=[0.5], std=[0.5])], seed=0)
    tiles = stage_tiles(result)
    assert [caption for _, caption in tiles] == [
        "0. original: PIL RGB (w, h) = (6, 4) uint8",
        "1. ToTensor: tensor (C, H, W) = (3, 4, 6) float32",
        "2. Normalize: tensor (C, H, W) = (3, 4, 6) float32 (values -1.00..1.00 rescaled to show)"]
    assert all(isinstance(array, np.ndarray) and array.dtype == np.uint8 for array, _ in tiles)


def test_rounding_summary_counts_the_values_that_differ():
    x = torch.tensor([[[0.6 / 255, 1.0, 0.0, 100.4 / 255]]])           # only the first rounds up, to 1
    result = tf.run_pipeline(x, [S("RandomHorizontalFlip", p=0.0)], seed=0)
    summary = rounding_summary(result)
    assert "From stage 1 (RandomHorizontalFlip):" in summary.text
    assert "differ in **1 of 4** values (by at most 1)." in summary.text
    assert [caption for _, caption in summary.tiles] == ["rounded", "truncated", "pixels that differ (white)"]
    assert summary.tiles[2][0].max() == 255
    assert rounding_summary(tf.run_pipeline(Image.new("L", (2, 1)), [S("Resize", size=4)], seed=0)) is None
