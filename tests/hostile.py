"""Hostile inputs shared by the page tests (AppTest) and the real-browser test."""

import io
import os
import zlib

import numpy as np
from PIL import Image


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def decompression_bomb() -> bytes:
    """A 1x1 PNG whose header claims 100,000 x 100,000 pixels (10^10), with a valid header checksum."""
    bomb = bytearray(encoded(Image.new("L", (1, 1))))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    return bytes(bomb)


def hostile_uploads() -> list[tuple[str, bytes, str]]:
    """(file name, bytes, text the page must show): each a clear outcome, never a traceback. The
    16-bit and CMYK images are valid and must be predicted ("confident"); the rest are refused."""
    deep = Image.fromarray(np.full((40, 40), 40000, dtype=np.uint16))
    return [("bomb.png", decompression_bomb(), "cannot use the upload"), ("empty.png", b"", "empty"),
            ("random.png", np.random.default_rng(0).bytes(3000), "not a known image format"),
            ("deep.png", encoded(deep), "confident"), ("cmyk.jpg", encoded(Image.new("CMYK", (30, 30)), "JPEG"),
                                                       "confident")]


class Evil:
    """Unpickling this runs `touch marker`: a checkpoint that executes code when loaded with pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
