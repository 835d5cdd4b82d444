"""The values `core.wandb` keeps and logs: config, summary, log() rows, Image, Table, Artifact.

    run.config.update(argparse_namespace)      # Config: attribute/item access, written through
    row = sort_values({"acc": 0.9, "img": img})   # numbers, texts, images, tables of one log() call
    img = wandb.Image(array_or_tensor_or_pil_or_figure, caption="7")    # 8-bit PNG bytes in img.png
    table = wandb.Table(columns=["image", "label"]); table.add_data(img, 7)
    art = wandb.Artifact("cnn", type="model"); art.add_file("best.safetensors")
    run.log_artifact(art, aliases=["best"]); run.use_artifact("cnn:best").download()

Pixels: uint8 is kept; floats in 0..1 are rounded to 8 bits (floor(x * 255 + 0.5), then clamped, as
torchvision's `save_image` does: 0.999 -> 255 where a plain cast would truncate to 254). Floats outside
0..1 follow W&B: data with negative values is min-max scaled to 0..1 first, data above 1 is read as
0..255. Other integers must already lie in 0..255.

Artifact names follow W&B (letters, digits, '-', '_', '.'); file names inside an artifact go through
`core.paths.safe_relative`, so none can leave the folder it is downloaded into. `add_file`/`add_dir`
copy files aside when they are added (W&B's default "mutable" policy), so later edits of the source
do not change what is logged; `policy="immutable"` reads them in place when the artifact is logged.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import io
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import numpy as np

from core.paths import UnsafePath, resolve_inside, safe_relative

PLAIN_TYPES = (type(None), bool, int, float, str)
ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
FILE_POLICIES = ("mutable", "immutable")
DEFAULT_TABLE_COLUMNS = ("Input", "Output", "Expected")     # W&B's, for a Table made without columns
PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")


# -- values --------------------------------------------------------------------------------------

def to_scalar(value):
    """A Python bool/int/float for numbers, numpy scalars and 0-d arrays or tensors; else None."""
    if isinstance(value, (bool, int, float)):
        return value
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        item = value.item()
        return item if isinstance(item, (bool, int, float)) else None
    return None


def as_plain_dict(value) -> dict | None:
    """The fields of an argparse.Namespace, a dataclass instance or a pydantic model; else None."""
    if isinstance(value, argparse.Namespace):
        return vars(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        return value.model_dump()
    return None


def json_friendly(value, where: str):
    """`value` as plain JSON data (dicts, lists, str, numbers, bools, None); TypeError naming `where`."""
    if isinstance(value, PLAIN_TYPES):
        return value
    scalar = to_scalar(value)
    if scalar is not None:
        return scalar
    if isinstance(value, Mapping):
        return {_json_key(k, where): json_friendly(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_friendly(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist") and hasattr(value, "shape"):          # numpy arrays, torch tensors
        return json_friendly((value.detach().cpu() if hasattr(value, "detach") else value).tolist(), where)
    if isinstance(value, enum.Enum):
        return json_friendly(value.value, where)
    if isinstance(value, PurePath) or type(value).__module__.startswith("torch"):   # paths, devices, dtypes
        return str(value)
    plain = as_plain_dict(value)
    if plain is not None:
        return json_friendly(plain, where)
    raise TypeError(f"{where}: a {type(value).__name__} cannot be stored; use numbers, strings, booleans, "
                    "lists or dicts of them")


def _json_key(key, where: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (int, float, bool)):
        return str(key)
    raise TypeError(f"{where}: dict keys must be strings or numbers, not {type(key).__name__}")


class Error(Exception):
    """A call that cannot work here, with what to do instead (as `wandb.Error`)."""


# -- config, summary and log() rows ------------------------------------------------------------------------------

class _Values:
    """A dict with attribute access whose changes are handed to `write` (None: kept in memory only)."""

    def __init__(self, kind: str, values: dict, write):
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_items", dict(values))
        object.__setattr__(self, "_write", write)

    def __getitem__(self, key):
        return self._items[key]

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(f"{self._kind} has no key {key!r}; keys: {', '.join(self._items) or 'none'}") from None

    def __setitem__(self, key, value):
        self.update({key: value})

    def __setattr__(self, key, value):
        self.update({key: value})

    def __contains__(self, key) -> bool:
        return key in self._items

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def keys(self):
        return self._items.keys()

    def items(self):
        return self._items.items()

    def values(self):
        return self._items.values()

    def get(self, key, default=None):
        return self._items.get(key, default)

    def as_dict(self) -> dict:
        return dict(self._items)

    def _store_values(self, values: dict, written: bool = False) -> None:
        """Keep `values`, and write them to the store unless the caller already has (`written`)."""
        if values:
            self._items.update(values)
            if self._write is not None and not written:
                self._write(values)

    def __repr__(self) -> str:
        return f"{self._kind}({self._items})"


class Config(_Values):
    """`run.config`: changing a value needs allow_val_change=True; keys a sweep set stay as it set them."""

    def __init__(self, values: dict, write, locked=()):
        super().__init__("config", values, write)
        object.__setattr__(self, "_locked", frozenset(locked))

    def update(self, d, allow_val_change: bool | None = None) -> None:
        changes = {}
        for key, value in config_dict(d).items():
            key = config_key(key)
            if key in self._locked:
                warnings.warn(f"config {key!r} is set by the sweep; the update to {value!r} is ignored", stacklevel=2)
                continue
            value = json_friendly(value, f"config {key!r}")
            if key in self._items and self._items[key] != value and not allow_val_change:
                raise Error(f"config {key!r} is {self._items[key]!r}; to change it to {value!r} pass "
                            "allow_val_change=True to config.update()")
            changes[key] = value
        self._store_values(changes)

    def setdefaults(self, d) -> None:
        self.update({k: v for k, v in config_dict(d).items() if config_key(k) not in self._items})


class Summary(_Values):
    """`run.summary`: the last logged value of each key, or what was set here (last write wins)."""

    def __init__(self, values: dict, write):
        super().__init__("summary", values, write)

    def update(self, d: Mapping) -> None:
        self._store_values({str(k): json_friendly(v, f"summary {k!r}") for k, v in dict(d).items()})


def config_dict(value) -> dict:
    """A config given as dict, argparse.Namespace, dataclass instance, pydantic model or YAML file path."""
    if value is None:
        return {}
    if isinstance(value, (Mapping, _Values)):
        return dict(value.items())
    if isinstance(value, (str, os.PathLike)):
        return _yaml_config(Path(value))
    plain = as_plain_dict(value)
    if plain is None:
        raise TypeError(f"config must be a dict, argparse.Namespace, dataclass instance, pydantic model or YAML "
                        f"file path; got {type(value).__name__}")
    return plain


def _yaml_config(path: Path) -> dict:
    import yaml

    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise TypeError(f"config file {path} must hold a mapping of names to values")
    loaded.pop("wandb_version", None)              # W&B's config-defaults.yaml wraps values as {value: ...}
    return {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in loaded.items()}


def config_key(key) -> str:
    if not isinstance(key, str) or not key.strip("-"):
        raise TypeError(f"config keys must be non-empty strings; got {key!r}")
    return key.strip("-")                          # "--lr" from argparse is "lr", as in W&B


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

    def __repr__(self) -> str:
        return f"Table(columns={self.columns}, rows={len(self.data)})"


def _cell(value, where: str):
    return value if isinstance(value, Image) else json_friendly(value, where)


# -- artifacts -----------------------------------------------------------------------------------

def check_artifact_name(name) -> str:
    if not isinstance(name, str) or not ARTIFACT_NAME.fullmatch(name) or set(name) == {"."}:
        raise ValueError(f"artifact name {name!r}: use 1-128 letters, digits, '-', '_' or '.' (as W&B does)")
    return name


def parse_artifact_ref(ref) -> tuple[str, str]:
    """("name", "alias") from "name", "name:alias" or "entity/project/name:alias" (alias 'latest' if none)."""
    if not isinstance(ref, str):
        raise TypeError(f"use_artifact takes an Artifact or a 'name:alias' string, not {type(ref).__name__}")
    name, _, alias = ref.rsplit("/", 1)[-1].partition(":")
    alias = alias or "latest"
    if ":" in alias or not alias:
        raise ValueError(f"{ref!r} is not 'name', 'name:alias' or 'name:v3'")
    return check_artifact_name(name), alias


def _walk_files(root: Path):
    """Files under `root` (sorted), not following links: a linked file counts only if it stays inside."""
    inside = root.resolve()
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for d in dirnames:
            if os.path.islink(os.path.join(folder, d)):
                warnings.warn(f"add_dir: not following the linked folder {os.path.join(folder, d)}", stacklevel=3)
        for name in sorted(filenames):
            path = Path(folder) / name
            target = path.resolve()
            if path.is_symlink() and inside not in target.parents:
                warnings.warn(f"add_dir: skipped {path}: it links outside {root}", stacklevel=3)
            elif target.is_file():
                yield path


class Artifact:
    """A versioned set of files: build it with add_file/add_dir/new_file, then `run.log_artifact(it)`.
    From `use_artifact` (or after logging) it names a stored version: `.name` is "cnn:v0", `.version`
    "v0", `.files` its relative paths, and `.download()` copies them into a folder."""

    def __init__(self, name: str, type: str, description: str | None = None, metadata: dict | None = None,
                 incremental: bool = False, use_as: str | None = None):
        self._name = check_artifact_name(name)
        if not isinstance(type, str) or not ARTIFACT_NAME.fullmatch(type):
            raise ValueError(f"artifact type {type!r}: use letters, digits, '-', '_' or '.' (e.g. 'model', 'dataset')")
        self.type = type
        self.description = description or ""
        self.metadata = json_friendly(dict(metadata or {}), "Artifact metadata")
        self._entries: dict[str, Path] = {}          # name inside the artifact -> file to read when logged
        self._staging: tempfile.TemporaryDirectory | None = None
        self._record = None                          # core.tracker.ArtifactRecord once logged or used
        self._store = None
        self._default_root: Path | None = None

    @property
    def name(self) -> str:
        return self._name if self._record is None else self._record.label

    @property
    def version(self) -> str | None:
        return None if self._record is None else f"v{self._record.version}"

    @property
    def aliases(self) -> list[str]:
        return [] if self._record is None else list(self._record.aliases)

    @property
    def digest(self) -> str | None:
        return None if self._record is None else self._record.digest

    @property
    def files(self) -> tuple[str, ...]:
        """Relative paths of the files (those added so far, for an artifact not yet logged)."""
        return tuple(sorted(self._entries)) if self._record is None else tuple(p for p, _, _ in self._record.files)

    def add_file(self, local_path, name: str | None = None, is_tmp: bool = False, skip_cache=None,
                 policy: str = "mutable", overwrite: bool = False) -> str:
        """Add one file as `name` (default: its file name); returns the name inside the artifact."""
        source = Path(local_path)
        if not source.is_file():
            raise ValueError(f"add_file: {local_path} is not a file")
        return self._add(source, name or source.name, policy, overwrite)

    def add_dir(self, local_path, name: str | None = None, skip_cache=None, policy: str = "mutable",
                merge: bool = False) -> None:
        """Add every file under a folder, under the prefix `name` if given; links leaving it are skipped."""
        root = Path(local_path)
        if not root.is_dir():
            raise ValueError(f"add_dir: {local_path} is not a folder")
        prefix = self._checked_name(name) if name else ""
        for path in _walk_files(root):
            relative = path.relative_to(root).as_posix()
            self._add(path, f"{prefix}/{relative}" if prefix else relative, policy, merge)

    @contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: str | None = None):
        """Write a new file straight into the artifact: `with art.new_file("notes.txt") as f: f.write(...)`."""
        name = self._checked_new(name, overwrite=False)
        target = resolve_inside(self._staging_folder(), name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, mode, encoding=encoding) as handle:
            yield handle
        self._entries[name] = target

    def download(self, root=None, **ignored) -> str:
        """Copy the stored version's files into `root` (default: under the run's folder); the folder."""
        if self._record is None:
            raise ValueError(f"artifact {self._name!r} is not stored yet: log it, or get it with use_artifact")
        folder = Path(root) if root is not None else self._default_root
        return str(self._store.download_artifact(self._record, folder))

    def file(self, root=None) -> str:
        """Download a one-file artifact; the path of that file."""
        if len(self.files) != 1:
            raise ValueError(f"artifact {self.name} holds {len(self.files)} files; use download() instead")
        return str(Path(self.download(root)) / self.files[0])

    def wait(self, timeout=None) -> "Artifact":
        return self

    def bind(self, record, store, default_root: Path) -> "Artifact":
        """Attach a stored version (done by log_artifact/use_artifact); the artifact is then final."""
        self._record, self._store, self._default_root = record, store, default_root
        self.description, self.metadata = record.description, record.metadata
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None
        return self

    @classmethod
    def from_record(cls, record, store, default_root: Path) -> "Artifact":
        artifact = cls(record.name, "stored")         # the stored type may predate the name rules
        artifact.type = record.type
        return artifact.bind(record, store, default_root)

    def entries(self) -> dict[str, Path]:
        """{name inside the artifact: file to read} for logging."""
        if not self._entries:
            raise ValueError(f"artifact {self._name!r} has no files; add_file/add_dir/new_file before logging it")
        return dict(self._entries)

    def _add(self, source: Path, name: str, policy: str, overwrite: bool) -> str:
        if policy not in FILE_POLICIES:
            raise ValueError(f"unknown policy {policy!r}; choose one of: {', '.join(FILE_POLICIES)}")
        name = self._checked_new(name, overwrite)
        if policy == "mutable":                       # a copy now, as W&B does, so later edits do not leak in
            target = resolve_inside(self._staging_folder(), name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            source = target
        self._entries[name] = source
        return name

    def _checked_new(self, name: str, overwrite: bool) -> str:
        if self._record is not None:
            raise ValueError(f"artifact {self.name} is stored and final; make a new Artifact to change its files")
        name = self._checked_name(name)
        if name in self._entries and not overwrite:
            raise ValueError(f"artifact {self._name!r} already holds {name!r}; pass overwrite=True to replace it")
        return name

    def _checked_name(self, name: str) -> str:
        try:
            return safe_relative(name)
        except UnsafePath as exc:
            raise UnsafePath(f"artifact {self._name!r}: {exc}") from None

    def _staging_folder(self) -> Path:
        if self._staging is None:
            self._staging = tempfile.TemporaryDirectory(prefix="lab-artifact-")
        return Path(self._staging.name)

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, type={self.type!r}, files={len(self.files)})"
