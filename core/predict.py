"""Predictions from a run's best checkpoint.

    predictor = Predictor.from_run("k3f9a2b1")          # or Predictor.from_folder(path)
    predictor.predict(24)            # threshold: a number
    predictor.predict((0.5, -0.2))   # 2-D sets: a point
    predictor.predict(pil_image)     # image sets: any size or mode
    -> Prediction(label="> 8", class_index=1, probabilities=(0.03, 0.97))
    checkpoint_runs(store)           # {run_id: "id · name · dataset/model"} for runs that can predict
    checkpoint_stamp(store, run_id)  # changes whenever the run writes a new best checkpoint: a cache key
    data, reason = validation_or_reason(predictor)   # None and a one-line reason when the files are gone
    clicked_point(points), clicked_cell(points, class_names)   # what a click on a chart picked

Weights are read from safetensors (nothing is unpickled) into a model rebuilt from the stored config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.checkpoint import load_model
from core.datasets import DatasetInfo
from core.errors import DataError, InputError
from core.preprocess import prepare_input

BEST_STEM = "best"                   # the checkpoint predictions use: <run folder>/best.safetensors


@dataclass(frozen=True)
class Prediction:
    label: str
    class_index: int
    probabilities: tuple[float, ...]

    def to_dict(self, run_id: str | None = None) -> dict:
        return {"run_id": run_id, "label": self.label, "class_index": self.class_index,
                "probabilities": list(self.probabilities)}


class Predictor:
    """A trained model in eval mode with its dataset info, ready for raw inputs."""

    def __init__(self, model: torch.nn.Module, info: DatasetInfo, meta: dict) -> None:
        self.model, self.info, self.meta = model.eval(), info, meta

    @classmethod
    def from_folder(cls, folder: Path | str) -> "Predictor":
        model, meta = load_model(Path(folder))
        return cls(model, DatasetInfo.from_dict(meta["dataset"]), meta)

    @classmethod
    def from_run(cls, run_id: str, store=None) -> "Predictor":
        from core.tracker import Store

        store = store or Store()
        store.get_run(run_id)                         # a clear error for an unknown id
        return cls.from_folder(store.run_folder(run_id))

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, num_classes) softmax probabilities for an already prepared batch."""
        return torch.softmax(self.model(batch.float()), dim=1)

    def predict(self, raw) -> Prediction:
        return self.predict_prepared(prepare_input(self.info, raw))

    def predict_prepared(self, batch: torch.Tensor) -> Prediction:
        """The prediction for a batch of one that is already normalised (e.g. a validation sample)."""
        probs = self.probabilities(batch)[0]
        index = int(probs.argmax())
        return Prediction(self.info.class_names[index], index, tuple(float(p) for p in probs))


def checkpoint_runs(store, limit: int = 200) -> dict[str, str]:
    """Runs that saved a checkpoint (newest first, at most `limit` looked at), each with a label for
    pickers: 'run id · name · dataset/model'."""
    return {r.run_id: f"{r.run_id} · {r.name} · {r.config.get('dataset')}/{r.config.get('model')}"
            for r in store.list_runs(limit=limit) if r.summary.get("checkpoint")}


def validation_or_reason(predictor: Predictor):
    """(the run's validation split, "") or (None, why): a missing dataset folder is named in one line,
    and the inputs that need no dataset (a drawing, an upload) can still be predicted."""
    from core.analysis import validation_data

    try:
        return validation_data(predictor), ""
    except DataError as exc:
        return None, str(exc)


def checkpoint_stamp(store, run_id: str) -> tuple[str, int, int, int]:
    """(path, mtime in ns, size, inode) of the run's best checkpoint; zeros when there is none yet.
    Checkpoints are replaced by renaming a new file over the old, so the stamp changes with every
    save: a run still training, or resumed, never leaves a cache serving its old weights."""
    path = Path(store.run_folder(run_id)) / f"{BEST_STEM}.safetensors"
    try:
        stat = path.stat()
    except OSError:
        return str(path), 0, 0, 0
    return str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino


# -- what a click on a chart picked ------------------------------------------------------------------

def click_targets(xs, ys) -> pd.DataFrame:
    """Every (x, y) pair of two axes, as columns x and y. Plotly selects points of scatter traces
    only, never heat-map cells, so these are drawn as invisible markers over a heat map to make each
    cell clickable."""
    grid_x, grid_y = np.meshgrid(np.asarray(xs), np.asarray(ys))
    return pd.DataFrame({"x": grid_x.ravel(), "y": grid_y.ravel()})


def clicked_point(points) -> tuple[float, float] | None:
    """(x, y) of the first picked point with finite numeric coordinates, or None."""
    for point in points or []:
        try:
            x, y = float(point["x"]), float(point["y"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(x) and math.isfinite(y):
            return x, y
    return None


def clicked_cell(points, class_names) -> tuple[str, str] | None:
    """(true label, prediction) of the first picked confusion-matrix cell (true labels on y,
    predictions on x), or None. A browser reports class names that look like numbers ("0".."9")
    as numbers, so a whole number is matched by its digits."""
    names = [str(name) for name in class_names]
    for point in points or []:
        label, prediction = (_class_name(point.get(axis), names) for axis in ("y", "x"))
        if label is not None and prediction is not None:
            return label, prediction
    return None


def _class_name(value, names: list[str]) -> str | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if value is not None and text in names else None


def parse_cli_input(text: str, info: DatasetInfo):
    """A CLI argument as the dataset's kind of input: a number, 'x,y', or an image path."""
    if info.kind == "scalar":
        return text
    if info.kind == "point":
        parts = text.split(",")
        if len(parts) != 2:
            raise InputError(f"{info.name} expects a point written x,y (e.g. 0.5,-1); got {text!r}")
        return tuple(parts)
    return open_image(Path(text))


def open_image(path: Path):
    """Open an image file for prediction; InputError for anything that is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"no image file at {path}")
    try:
        with Image.open(path) as img:
            img.seek(0)
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read {path} as an image: {exc}") from None
