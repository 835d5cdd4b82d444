import io
import os
import zlib

import pytest
from PIL import Image

from core.errors import InputError
from core.uploads import MAX_PIXELS, read_upload


def encoded(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_ordinary_modes_open():
    for mode in ("RGB", "L", "RGBA", "P", "I;16"):
        assert read_upload(encoded(Image.new(mode, (5, 7)))).size == (5, 7)
    assert read_upload(encoded(Image.new("CMYK", (4, 4)), "JPEG")).mode == "CMYK"


def test_decompression_bomb_is_refused_from_the_header():
    # a 1x1 PNG whose header claims 100000 x 100000 pixels (10^10)
    data = bytearray(encoded(Image.new("L", (1, 1))))
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")     # a valid IHDR checksum
    assert len(data) < 1000
    with pytest.raises(InputError, match=f"10000000000 pixels.*at most {MAX_PIXELS / 1e6:g} megapixels"):
        read_upload(bytes(data))


@pytest.mark.parametrize("data,fragment", [(b"", "empty"), (os.urandom(2048), "not a known image format"),
                                           (b"MZ\x90\x00" + bytes(500), "not a known image format")])
def test_junk_is_refused_with_one_line(data, fragment):
    with pytest.raises(InputError, match=fragment) as info:
        read_upload(data)
    assert "\n" not in str(info.value)


def test_exif_orientation_is_applied_and_first_frame_taken():
    image = Image.new("RGB", (20, 10))
    exif = image.getexif()
    exif[0x0112] = 6                                       # rotate 90 degrees when shown
    assert read_upload(encoded(image, "JPEG", exif=exif)).size == (10, 20)
    frames = [Image.new("L", (6, 6), c) for c in (10, 200, 90)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    first = read_upload(gif.getvalue())
    assert first.convert("L").getpixel((0, 0)) == 10


def test_an_image_pillow_would_decode_is_refused_by_our_own_pixel_limit():
    """20 megapixels: under Pillow's default limit (about 89 million), over ours. A small, valid file
    (one colour), so only our header check can refuse it, before any pixel is decoded."""
    data = encoded(Image.new("1", (5000, 4000)))
    assert MAX_PIXELS < 5000 * 4000 < Image.MAX_IMAGE_PIXELS and len(data) < 100_000
    with Image.open(io.BytesIO(data)) as image:                        # Pillow alone: decodes it
        image.load()
    with pytest.raises(InputError, match=f"5000x4000 pixels is too many.*at most {MAX_PIXELS / 1e6:g} megapixels"):
        read_upload(data)
    assert read_upload(data, max_pixels=5000 * 4000).size == (5000, 4000)


def test_files_over_the_upload_size_limit_are_refused_before_decoding():
    """MAX_UPLOAD_BYTES is the server's cap (.streamlit/config.toml), checked again by the app: a valid
    PNG followed by padding (which Pillow ignores) opens at the limit and is refused one byte over it."""
    import tomllib

    from core.uploads import MAX_UPLOAD_BYTES
    from tests.conftest import REPO

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert MAX_UPLOAD_BYTES == config["server"]["maxUploadSize"] * 2**20
    png = encoded(Image.new("RGB", (3, 2), "red"))
    at_limit = png + bytes(MAX_UPLOAD_BYTES - len(png))
    assert read_upload(at_limit).size == (3, 2)
    with pytest.raises(InputError, match=f"the file has {MAX_UPLOAD_BYTES + 1:,} bytes, over {MAX_UPLOAD_BYTES:,}"):
        read_upload(at_limit + b"\0")
