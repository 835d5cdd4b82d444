"""Predictions from a run's best checkpoint.

    predictor = Predictor.from_run("k3f9a2b1")          # or Predictor.from_folder(path)
    predictor.predict(24)            # threshold: a number
    predictor.predict((0.5, -0.2))   # 2-D sets: a point
    predictor.predict(pil_image)     # image sets: any size or mode
    -> Prediction(label="> 8", class_index=1, probabilities=(0.03, 0.97))
    checkpoint_runs(store)           # {run_id: "id · name · dataset/model"} for runs that can predict

Weights are read from safetensors (nothing is unpickled) into a model rebuilt from the stored config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.checkpoint import load_model
from core.datasets import DatasetInfo
from core.errors import InputError
from core.preprocess import prepare_input


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
