"""What one `core.wandb.log()` call holds: numbers, texts, `Image`s and `Table`s, sorted into a `Row`.

    row = sort_values({"acc": 0.9, "img": img})   # numbers, texts, images, tables of one log() call
    img = wandb.Image(array_or_tensor_or_pil_or_figure, caption="7")    # 8-bit PNG bytes in img.png
    table = wandb.Table(columns=["image", "label"]); table.add_data(img, 7)

Pixels: uint8 is kept; floats in 0..1 are rounded to 8 bits (floor(x * 255 + 0.5), then clamped, as
torchvision's `save_image` does: 0.999 -> 255 where a plain cast would truncate to 254). Floats outside
0..1 follow W&B: data with negative values is min-max scaled to 0..1 first, data above 1 is read as
0..255. Other integers must already lie in 0..255.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np

from core.wandb_values import json_friendly, refuse_attribute, to_scalar

DEFAULT_TABLE_COLUMNS = ("Input", "Output", "Expected")     # W&B's, for a Table made without columns
PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")


# -- what one log() call holds -----------------------------------------------------------------------

@dataclass
class Row:
    """Values waiting to be written at one step."""

    numbers: dict = field(default_factory=dict)
    texts: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)     # key -> list of Image
    tables: dict = field(default_factory=dict)     # key -> Table

    def merge(self, other: "Row") -> None:
        for name in ("numbers", "texts", "images", "tables"):
            getattr(self, name).update(getattr(other, name))

    def __bool__(self) -> bool:
        return bool(self.numbers or self.texts or self.images or self.tables)


LOG_TYPES = "numbers (int, float, bool, numpy/torch scalars), str, wandb.Image (or a list of them), wandb.Table"


def sort_values(data: Mapping, prefix: str = "") -> Row:
    """Sort one log() dict into numbers, texts, images and tables; TypeError naming a bad key."""
    if not isinstance(data, Mapping):
        raise TypeError(f"log() takes a dict of values; got {type(data).__name__}")
    row = Row()
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"log() keys must be non-empty strings; got {key!r}")
        key = prefix + key
        scalar = to_scalar(value)
        if scalar is not None:
            row.numbers[key] = scalar
        elif isinstance(value, str):
            row.texts[key] = value
        elif isinstance(value, Image):
            row.images[key] = [value]
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Image) for v in value):
            row.images[key] = list(value)
        elif isinstance(value, Table):
            row.tables[key] = value
        elif isinstance(value, Mapping):
            row.merge(sort_values(value, f"{key}."))
        else:
            raise TypeError(f"log(): {key!r} is a {type(value).__name__}; supported values: {LOG_TYPES}, "
                            "or a dict of these")
    return row


def epoch_of(numbers: dict) -> int | None:
    epoch = numbers.get("epoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


# -- images --------------------------------------------------------------------------------------

def to_uint8(array: np.ndarray) -> np.ndarray:
    """8-bit pixels from a numeric array, by the rules in the module docstring."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(f"integer image values must lie in 0..255; got {array.min()}..{array.max()} "
                             "(scale them, or pass floats in 0..1)")
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"image arrays must hold numbers, not {array.dtype}")
    x = array.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("the image holds NaN or infinite values")
    if x.size and x.min() < 0:                                         # W&B: min-max scale to 0..1
        span = x.max() - x.min()
        x = (x - x.min()) / span if span > 0 else np.zeros_like(x)
    if x.size and x.max() > 1:                                         # W&B: already 0..255
        return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)
    return np.clip(np.floor(x * 255 + 0.5), 0, 255).astype(np.uint8)


def _tensor_to_hwc(tensor) -> np.ndarray:
    """A torch image, (C, H, W) with C in 1, 3, 4 (or (1, C, H, W)) or (H, W), as an (H, W[, C]) array."""
    t = tensor.detach().cpu()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim == 3 and t.shape[0] in (1, 3, 4):
        t = t.permute(1, 2, 0)
    elif t.ndim != 2:
        raise ValueError(f"a tensor image needs shape (C, H, W) with C = 1, 3 or 4, or (H, W); got {tuple(t.shape)}")
    if t.dtype.is_floating_point and t.dtype.itemsize < 4:               # half/bfloat16: numpy lacks bfloat16
        t = t.float()
    return t.numpy()


def _array_to_pil(array: np.ndarray):
    """(H, W), (H, W, 1|3|4) or (1, H, W) arrays (extra leading size-1 axes allowed) as a PIL image."""
    from PIL import Image as PILImage

    shape = array.shape
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    elif array.ndim == 3 and array.shape[0] == 1 and array.shape[-1] not in (3, 4):
        array = array[0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
        raise ValueError(f"an image array needs shape (H, W), (H, W, 3) or (H, W, 4); got {shape}")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[array.shape[-1] if array.ndim == 3 else 2]
    return PILImage.fromarray(np.ascontiguousarray(to_uint8(array)), mode)


def _to_pil(data):
    """A PIL image from any input `Image` accepts."""
    from PIL import Image as PILImage

    from core.uploads import to_rgb_or_l

    if isinstance(data, Image):
        return data.image
    if isinstance(data, (str, PurePath)):
        with PILImage.open(data) as opened:
            opened.load()
            data = opened.copy()
    if isinstance(data, PILImage.Image):
        return data if data.mode in PNG_MODES else to_rgb_or_l(data)
    if callable(getattr(data, "savefig", None)):                       # a matplotlib figure
        buffer = io.BytesIO()
        data.savefig(buffer, format="png")
        buffer.seek(0)
        with PILImage.open(buffer) as opened:
            opened.load()
            return opened.copy()
    if hasattr(data, "detach") and hasattr(data, "permute"):           # a torch tensor
        data = _tensor_to_hwc(data)
    if isinstance(data, np.ndarray):
        return _array_to_pil(data)
    raise TypeError(f"Image takes a PIL image, a numpy array, a torch tensor, a matplotlib figure or an image "
                    f"file path; got {type(data).__name__}")


class Image:
    """An image to log, or to put in a Table cell; kept as 8-bit PNG bytes (`png`)."""

    def __init__(self, data_or_path, mode: str | None = None, caption: str | None = None, grouping=None,
                 classes=None, boxes=None, masks=None, file_type: str | None = None, normalize: bool = True):
        if boxes is not None or masks is not None or classes is not None:
            warnings.warn("Image: boxes, masks and classes are not stored here; only the pixels and caption are",
                          stacklevel=2)
        pil = _to_pil(data_or_path)
        if mode is not None:
            pil = pil.convert(mode)
        buffer = io.BytesIO()
        pil.save(buffer, format="PNG")
        self.png: bytes = buffer.getvalue()
        self.width, self.height = pil.size
        self.mode = pil.mode
        self.caption = None if caption is None else str(caption)

    @property
    def image(self):
        """The pixels as a PIL image."""
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(self.png)) as opened:
            opened.load()
            return opened.copy()

    def cell(self, put_blob) -> dict:
        """The JSON a Table cell (or a summary) holds for this image, after storing the PNG."""
        return {"_type": "image", "sha256": put_blob(self.png), "caption": self.caption,
                "width": self.width, "height": self.height}

    def __getattr__(self, name: str):
        refuse_attribute(self, name)

    def __repr__(self) -> str:
        return f"Image({self.width}x{self.height} {self.mode}, caption={self.caption!r})"


# -- tables --------------------------------------------------------------------------------------

class Table:
    """Rows of cells (numbers, strings, Images, lists/dicts of plain values) under named columns."""

    def __init__(self, columns=None, data=None, rows=None, dataframe=None, dtype=None, optional=True,
                 allow_mixed_types=False):
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns] if columns is None else columns
            data = [list(row) for row in dataframe.itertuples(index=False)]
        columns = list(DEFAULT_TABLE_COLUMNS if columns is None else columns)
        if not columns or any(not isinstance(c, str) or not c for c in columns) or len(set(columns)) < len(columns):
            raise ValueError(f"Table columns must be distinct non-empty strings; got {columns}")
        self.columns: list[str] = columns
        self.data: list[list] = []
        for row in (data if data is not None else rows) or ():
            self.add_data(*row)

    def add_data(self, *row) -> None:
        """Append one row; it must have one value per column."""
        if len(row) != len(self.columns):
            raise ValueError(f"Table.add_data got {len(row)} values for {len(self.columns)} columns "
                             f"({', '.join(self.columns)})")
        index = len(self.data)
        self.data.append([_cell(v, f"Table row {index}, column {c!r}") for c, v in zip(self.columns, row)])

    def add_column(self, name: str, data) -> None:
        """Add a column; `data` has one value per existing row (or makes the rows of an empty table)."""
        values = list(data)
        if not isinstance(name, str) or not name or name in self.columns:
            raise ValueError(f"Table.add_column: {name!r} must be a new non-empty column name")
        if self.data and len(values) != len(self.data):
            raise ValueError(f"Table.add_column({name!r}) got {len(values)} values for {len(self.data)} rows")
        if not self.data:
            self.data = [[None] * len(self.columns) for _ in values]
        self.columns.append(name)
        for i, (row, value) in enumerate(zip(self.data, values)):
            row.append(_cell(value, f"Table row {i}, column {name!r}"))

    def get_column(self, name: str) -> list:
        if name not in self.columns:
            raise KeyError(f"Table has no column {name!r}; columns: {', '.join(self.columns)}")
        index = self.columns.index(name)
        return [row[index] for row in self.data]

    def stored_rows(self, put_blob) -> list[list]:
        """The rows as JSON, image cells stored as blobs: {"_type": "image", "sha256", "caption", ...}."""
        return [[v.cell(put_blob) if isinstance(v, Image) else v for v in row] for row in self.data]

    def __len__(self) -> int:
        return len(self.data)

    def __getattr__(self, name: str):
        refuse_attribute(self, name)

    def __repr__(self) -> str:
        return f"Table(columns={self.columns}, rows={len(self.data)})"


def _cell(value, where: str):
    return value if isinstance(value, Image) else json_friendly(value, where)
