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
