"""Opening images that users upload: size and pixel caps, a format allow list, first frame only.

    image = read_upload(data: bytes)      # a PIL image, or InputError with a one-line reason

The format is judged by content, never by the file name (which is never used as a path). A file
whose header claims more than MAX_PIXELS is refused before any pixel is decoded.
"""

from __future__ import annotations

import io

from core.errors import InputError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024          # keep in step with server.maxUploadSize in .streamlit/config.toml
MAX_PIXELS = 16_000_000                       # well under Pillow's default of about 89 million
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


def read_upload(data: bytes):
    """Decode an uploaded image safely; EXIF orientation applied; animated images give frame 0."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise InputError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"the file has {len(data):,} bytes; the limit is {MAX_UPLOAD_BYTES:,}")
    try:
        with Image.open(io.BytesIO(data)) as img:
            check_header(img)
            img.seek(0)
            img.load()
            frame = ImageOps.exif_transpose(img.copy())
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(f"the image claims too many pixels; the limit is {MAX_PIXELS:,}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"not a readable image ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    return frame


def check_header(img) -> None:
    """Refuse unknown formats and oversized images from the header alone, before decoding."""
    if img.format not in ALLOWED_FORMATS:
        raise InputError(f"image format {img.format} is not accepted; use one of {', '.join(ALLOWED_FORMATS)}")
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise InputError(f"the image claims {width}x{height} = {width * height:,} pixels; the limit is "
                         f"{MAX_PIXELS:,}")
    if width < 1 or height < 1:
        raise InputError("the image has no pixels")
