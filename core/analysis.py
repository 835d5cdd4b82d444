"""What a trained model learned: probability curves, decision boundaries, validation cases, confusion.

    predictor = Predictor.from_run(run_id)
    curve = probability_curve(predictor, -5, 25)              # threshold toy: P(class) over x
    xs, ys, probs = decision_grid(predictor, data, 80)        # 2-D sets: a heat map
    cases = validation_cases(predictor, data)                 # one row per validation sample
    matrix = confusion_matrix(cases, predictor.info.class_names)
    top_probabilities(prediction.probabilities, class_names, 5)   # the bars beside a prediction
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from core.datasets import TensorData, load_dataset
from core.predict import Predictor


def validation_data(predictor: Predictor) -> TensorData:
    """The run's own validation split (same dataset options and seed as when it trained)."""
    from core.config import TrainConfig

    return load_dataset(TrainConfig.from_dict(predictor.meta["config"]))


def probability_curve(predictor: Predictor, low: float, high: float, num: int = 200) -> pd.DataFrame:
    """For a scalar dataset: x and the probability of each class at x."""
    xs = np.linspace(low, high, num)
    info = predictor.info
    batch = (torch.tensor(xs, dtype=torch.float32).view(-1, 1) - info.mean[0]) / info.std[0]
    probs = predictor.probabilities(batch).numpy()
    return pd.DataFrame({"x": xs, **{name: probs[:, i] for i, name in enumerate(info.class_names)}})


def raw_points(data: TensorData) -> tuple[np.ndarray, np.ndarray]:
    """Training inputs as the user sees them (unnormalised) and their labels."""
    raw = data.train_x.numpy() * np.asarray(data.info.std) + np.asarray(data.info.mean)
    return raw, data.train_y.numpy()


def decision_grid(predictor: Predictor, data: TensorData, resolution: int = 80):
    """For a 2-D dataset: grid axes and the predicted probability of class 1 (or the top class)
    at each grid point, covering the training points with a margin."""
    raw, _ = raw_points(data)
    low, high = raw.min(axis=0), raw.max(axis=0)
    margin = (high - low) * 0.1 + 1e-6
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    info = predictor.info
    batch = (torch.tensor(points, dtype=torch.float32) - torch.tensor(info.mean)) / torch.tensor(info.std)
    probs = predictor.probabilities(batch.float()).numpy()
    column = 1 if probs.shape[1] == 2 else None
    values = probs[:, column] if column is not None else probs.argmax(axis=1)
    return xs, ys, values.reshape(resolution, resolution)


@torch.inference_mode()
def validation_cases(predictor: Predictor, data: TensorData) -> pd.DataFrame:
    """index, label, prediction, confidence, correct for every validation sample."""
    probs = torch.cat([predictor.probabilities(chunk) for chunk in data.val_x.split(1024)])
    confidence, predicted = probs.max(dim=1)
    names = np.asarray(predictor.info.class_names)
    labels = data.val_y.numpy()
    return pd.DataFrame({"index": np.arange(len(labels)), "label": names[labels],
                         "prediction": names[predicted.numpy()], "confidence": confidence.numpy(),
                         "correct": predicted.numpy() == labels})


def pick_cases(cases: pd.DataFrame, correct: bool, label: str | None = None,
               prediction: str | None = None, limit: int = 50) -> pd.DataFrame:
    """Up to `limit` right or wrong cases, optionally of one true label and/or one prediction;
    the most confident first (confident mistakes are the interesting ones)."""
    chosen = cases[cases["correct"] == correct]
    if label is not None:
        chosen = chosen[chosen["label"] == label]
    if prediction is not None:
        chosen = chosen[chosen["prediction"] == prediction]
    return chosen.sort_values("confidence", ascending=False).head(limit)


def top_probabilities(probabilities, class_names, k: int = 5) -> pd.DataFrame:
    """The `k` most probable classes, most probable first: a `probability` column indexed by class name."""
    order = np.argsort(probabilities)[::-1][:k]
    return pd.DataFrame({"probability": {class_names[i]: probabilities[i] for i in order}})


def case_captions(cases: pd.DataFrame) -> list[str]:
    """'label→prediction confidence' per case, e.g. '3→8 97%', for image captions."""
    return [f"{r.label}→{r.prediction} {r.confidence:.0%}" for r in cases.itertuples()]


def confusion_matrix(cases: pd.DataFrame, class_names) -> pd.DataFrame:
    """Counts with true labels as rows and predictions as columns, every class present."""
    table = pd.crosstab(cases["label"], cases["prediction"])
    names = list(class_names)
    return table.reindex(index=names, columns=names, fill_value=0)


def sample_images(data: TensorData, indices, split: str = "val") -> list[np.ndarray]:
    """Validation (or training) samples as uint8 images for display (rounded, not truncated)."""
    x_all = data.val_x if split == "val" else data.train_x
    mean = np.asarray(data.info.mean).reshape(-1, 1, 1)
    std = np.asarray(data.info.std).reshape(-1, 1, 1)
    images = []
    for i in indices:
        pixels = np.clip((x_all[int(i)].numpy() * std + mean) * 255 + 0.5, 0, 255).astype(np.uint8)
        images.append(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    return images


def canvas_to_image(rgba: np.ndarray):
    """A drawing canvas' RGBA array -> a grayscale PIL image, strokes composited over white."""
    from PIL import Image

    rgba = np.asarray(rgba, dtype=np.float32)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an RGBA array of shape (h, w, 4), got {rgba.shape}")
    alpha = rgba[..., 3:4] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1 - alpha)
    gray = rgb.mean(axis=2)
    return Image.fromarray(np.clip(gray + 0.5, 0, 255).astype(np.uint8), mode="L")
