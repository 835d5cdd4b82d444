"""Opening images that users upload: size and pixel caps, a format allow list, first frame only.

    image = read_upload(data: bytes)          # a PIL image, or InputError with a one-line reason
    plain = to_rgb_or_l(image)                # 16-bit, palette, alpha, CMYK... as RGB or L

The format is judged by content (only the allowed decoders are tried), never by the file name, which
is never used as a path. A file whose header claims more than `max_pixels` is refused before any
pixel is decoded. Pillow's global pixel limit is left alone: every session of a server shares it.
"""

from __future__ import annotations

import io

import numpy as np

from core.errors import InputError, first_line

MAX_UPLOAD_BYTES = 10 * 2**20                 # matches server.maxUploadSize in .streamlit/config.toml
MAX_PIXELS = 16_000_000                       # well under Pillow's default of about 89 million
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


def allowed_text(max_pixels: int) -> str:
    kinds = f"{', '.join(ALLOWED_FORMATS[:-1])} or {ALLOWED_FORMATS[-1]}"
    return f"upload a {kinds} file of at most {max_pixels / 1e6:g} megapixels"


def read_upload(data: bytes, max_pixels: int = MAX_PIXELS):
    """Decode uploaded bytes safely: first frame, EXIF orientation applied, mode unchanged."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise InputError(f"the file is empty; {allowed_text(max_pixels)}")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"the file has {len(data):,} bytes, over {MAX_UPLOAD_BYTES:,}; {allowed_text(max_pixels)}")
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise Image.DecompressionBombError(f"{width}x{height} pixels is too many")
            image.seek(0)
            image.load()
            return ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, EOFError, SyntaxError,
            ValueError) as exc:
        reason = "not a known image format" if isinstance(exc, UnidentifiedImageError) else first_line(exc)
        raise InputError(f"cannot use the upload as an image ({reason}); {allowed_text(max_pixels)}") from None


def to_rgb_or_l(image):
    """An image in a plain mode: 16/32-bit gray scaled to 8-bit L, palette/alpha/CMYK on white as RGB."""
    from PIL import Image

    if image.mode in ("RGB", "L"):
        return image.copy()
    if image.mode.startswith("I") or image.mode == "F":      # 16/32-bit gray: scale 65535 -> 255
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        scale = 257.0 if image.mode.startswith("I;16") or array.max() > 255 else 1.0
        return Image.fromarray(np.clip(array / scale + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "1":
        return image.convert("L")
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def fit_for_preview(image, max_side: int = 1024):
    """The image scaled down to at most `max_side` pixels per side (aspect kept), and a note if it was."""
    from PIL import Image

    w, h = image.size
    if max(w, h) <= max_side:
        return image, ""
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.LANCZOS), f"scaled from (w, h) = ({w}, {h}) to {size} to keep previews quick"
