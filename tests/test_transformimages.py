"""core.transformimages: rounding and truncation against torchvision as the oracle, uploads opened
safely, dataset samples, and stages turned into arrays to show."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.utils import save_image

from core import transformimages as ti
from core import transforms as tf
from core.uploads import MAX_PIXELS, fit_for_preview, read_upload

S = tf.new_step


@pytest.fixture(scope="module")
def photo():
    return ti.load_sample_photo()


def test_rounding_and_truncation_on_hand_computed_values():
    x = torch.tensor([0.0, 0.5, 0.999, 1.0, 0.1, -0.2, 1.7])
    # 0.5*255 = 127.5 -> 128 / 127; 0.999*255 = 254.745 -> 255 / 254; 0.1*255 = 25.5 -> 26 / 25; clamped ends
    assert ti.to_uint8_rounded(x).tolist() == [0, 128, 255, 255, 26, 0, 255]
    assert ti.to_uint8_truncated(x).tolist() == [0, 127, 254, 255, 25, 0, 255]
    cmp = ti.compare_rounding(x.view(1, 1, 7))
    assert (cmp.num_different, cmp.num_values, cmp.max_difference) == (3, 7, 1)
    assert cmp.mask.view(-1).tolist() == [0, 255, 255, 0, 255, 0, 0]


def test_rounding_matches_save_image_and_truncation_matches_to_pil_image():
    x = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    save_image(x, buffer, format="PNG")
    saved = np.asarray(Image.open(buffer))
    assert np.array_equal(saved, ti.to_uint8_rounded(x).permute(1, 2, 0).numpy())
    assert np.array_equal(np.asarray(T.ToPILImage()(x)), ti.to_uint8_truncated(x).permute(1, 2, 0).numpy())
    assert ti.compare_rounding(x).num_different > 0


def test_rounding_source_undoes_a_final_normalize(photo):
    result = tf.run_pipeline(photo, [S("Resize", size=50), S("ToTensor"), S("Normalize")], 0)
    x, where = ti.rounding_source(result)
    assert "undone" in where and torch.allclose(x, result.stages[2].output, atol=1e-6)
    assert ti.compare_rounding(x).num_different > 0           # float error: 254.99998 truncates to 254
    assert ti.rounding_source(tf.run_pipeline(photo, [S("Resize", size=50)], 0)) is None


# -- images in -------------------------------------------------------------------------------------

def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **{"format": "PNG", **options})
    return buffer.getvalue()


def test_random_bytes_give_a_clean_one_line_error():
    junk = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(tf.TransformError) as caught:
        ti.open_image(junk)
    message = str(caught.value)
    assert message.startswith("cannot use the upload as an image (not a known image format); upload a PNG")
    assert "\n" not in message and "BytesIO" not in message


def test_a_header_claiming_too_many_pixels_is_refused_before_decoding():
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    ihdr = struct.pack(">II", 100_000, 100_000) + bytes(data[24:29])      # width, height, then the rest
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    with pytest.raises(tf.TransformError, match=f"at most {MAX_PIXELS / 1e6:g} megapixels"):
        ti.open_image(bytes(data))
    with pytest.raises(tf.TransformError, match="60x60 pixels is too many"):
        ti.open_image(png_bytes(Image.new("RGB", (60, 60))), max_pixels=3000)
    truncated = png_bytes(Image.effect_noise((64, 64), 50))[:300]
    with pytest.raises(tf.TransformError, match="cannot use the upload"):
        ti.open_image(truncated)


def test_transforms_refuse_the_same_images_as_every_other_upload():
    """One pixel limit for all uploads: a valid 20-megapixel image, which Pillow's own limit (about
    89 million) lets through, is refused here exactly as on the Predict page."""
    data = png_bytes(Image.new("1", (5000, 4000)))                       # a single colour: a small file
    assert MAX_PIXELS < 5000 * 4000 < Image.MAX_IMAGE_PIXELS and len(data) < 100_000
    with pytest.raises(ValueError) as predict_error:
        read_upload(data)
    with pytest.raises(tf.TransformError) as transforms_error:
        ti.open_image(data)
    assert str(transforms_error.value) == str(predict_error.value)
    assert "5000x4000 pixels is too many" in str(transforms_error.value)


def test_uploads_get_exif_orientation_first_frame_and_a_plain_mode():
    exif = Image.Exif()
    exif[0x0112] = 6                                                    # rotate 90 degrees to display
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(buffer, format="JPEG", exif=exif)
    assert ti.open_image(buffer.getvalue()).size == (20, 40)
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("blue", "yellow")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    gif = ti.open_image(buffer.getvalue())
    assert gif.mode == "RGB" and gif.getpixel((0, 0)) == (0, 0, 255)
    clear = ti.open_image(png_bytes(Image.new("RGBA", (4, 4), (10, 20, 30, 0))))
    assert clear.getpixel((0, 0)) == (255, 255, 255)                    # transparent shown on white
    deep = ti.open_image(png_bytes(Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))))
    assert deep.mode == "L" and deep.getpixel((0, 0)) == 255


def test_dataset_sample_is_the_digit_un_normalised():
    image, label = ti.dataset_sample(0, "digits")
    assert image.mode == "L" and image.size == (8, 8) and label in [str(i) for i in range(10)]
    levels = np.arange(17) * 255 / 16                                     # sklearn's ink levels 0..16
    distance = np.abs(np.asarray(image, dtype=float)[..., None] - levels).min(axis=-1)
    assert distance.max() <= 0.5 + 1e-6
    with pytest.raises(tf.TransformError, match=r"sample index 100000 is out of range; use 0\.\.358"):
        ti.dataset_sample(100_000, "digits")


def test_display_array_keeps_small_images_crisp_and_flags_rescaling():
    image = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L")
    array, note = ti.display_array(image)
    assert array.shape == (160, 160) and note == ""
    assert np.array_equal(array[::20, ::20], np.asarray(image))
    normalised = tf.run_pipeline(image, [S("ToTensor"), S("Normalize", mean=[0.5], std=[0.1])], 0).stages[-1].output
    array, note = ti.display_array(normalised)
    assert "rescaled" in note and array.min() == 0 and array.max() == 255


def test_big_uploads_are_scaled_down_for_preview_with_a_note():
    small = Image.new("RGB", (300, 200))
    assert fit_for_preview(small) == (small, "")
    big, note = fit_for_preview(Image.new("RGB", (3000, 100)))
    assert big.size == (1024, 34) and "(3000, 100)" in note
