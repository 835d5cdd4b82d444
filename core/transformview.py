"""What the Transforms page shows of a pipeline, and how its buttons change one (no streamlit here).

    steps = edit_steps(steps, "move", 2, -1)         # also "remove", "add" (arg: step name), "preset"
    image, caption = dataset_source(3, "digits")     # or photo_source(), upload_source(data)
    for array, caption in stage_tiles(result): ...   # one picture per stage of a PipelineResult
    summary = rounding_summary(result)               # rounding vs truncation, or None without a float tensor

Pipelines are the plain step dicts of `core.transforms`; edits return new lists and leave their input
alone. Captions and texts here are the page's words; the page lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import transformimages as ti
from core import transforms as tf
from core.uploads import fit_for_preview

EDITS = ("move", "remove", "add", "preset")


def edit_steps(steps: list[dict], action: str, index: int = 0, arg=None) -> list[dict]:
    """A new pipeline: step `index` moved by `arg` places ("move") or removed ("remove"); a new step
    named `arg` with its defaults appended ("add"); step `index` replaced by Normalize with the preset
    named `arg` ("preset", see NORMALIZE_PRESETS)."""
    steps = list(steps)
    if action == "move":
        return tf.move_step(steps, index, arg)
    if action == "remove":
        del steps[index]
    elif action == "add":
        steps.append(tf.new_step(arg))
    elif action == "preset":
        steps[index] = tf.new_step("Normalize", **dict(zip(("mean", "std"), tf.NORMALIZE_PRESETS[arg])))
    else:
        raise ValueError(f"unknown pipeline edit {action!r}; choose one of: {', '.join(EDITS)}")
    return steps


def step_title(index: int, spec: tf.StepSpec) -> str:
    """The Markdown heading of step `index` (0-based) in the editor: number, name, (random), summary."""
    return f"**{index + 1}. {spec.name}**{' (random)' if spec.random else ''}: {spec.summary}"


# -- images to start from, with their captions -----------------------------------------------------

def photo_source():
    """The bundled sample photo and its caption."""
    return ti.load_sample_photo(), "The bundled sample photo (synthetic)."


def dataset_source(index: int, dataset: str):
    """Validation sample `index` of an image dataset, un-normalised, and its caption; TransformError
    when the index is out of range."""
    image, label = ti.dataset_sample(index, dataset)
    return image, f"{dataset} validation sample {index}, class {label}, un-normalised to 0..255."


def upload_source(data: bytes):
    """Uploaded bytes as an image scaled for previews, and its caption (TransformError for a bad file)."""
    image, note = fit_for_preview(ti.open_image(data))
    return image, f"The uploaded image{', ' + note if note else ''}."


# -- what the stages look like ---------------------------------------------------------------------

def stage_tiles(result: tf.PipelineResult) -> list[tuple[np.ndarray, str]]:
    """(picture, caption) per stage, original first: 'index. step: type shape dtype (rescaling note)'."""
    rows = result.stats.to_dict("records")
    tiles = []
    for stage in result.stages:
        array, note = ti.display_array(stage.output)
        row = rows[stage.index]
        tiles.append((array, f"{stage.index}. {stage.name}: {row['type']} {row['shape']} "
                             f"{row['dtype']}{f' ({note})' if note else ''}"))
    return tiles


@dataclass(frozen=True)
class RoundingSummary:
    """What converting the pipeline's float tensor back to 8 bits shows: a sentence (Markdown) and
    (picture, caption) for the rounded, the truncated and the difference mask."""

    text: str
    tiles: tuple[tuple[np.ndarray, str], ...]


def rounding_summary(result: tf.PipelineResult) -> RoundingSummary | None:
    """Rounding against truncation on the last float stage (see `rounding_source`); None without one."""
    source = ti.rounding_source(result)
    if source is None:
        return None
    x, where = source
    cmp = ti.compare_rounding(x)
    text = (f"From {where}: rounding, `(x * 255 + 0.5).clamp(0, 255).to(torch.uint8)` as "
            f"`torchvision.utils.save_image` does, and truncation, `(x * 255).to(torch.uint8)` as `ToPILImage` "
            f"does, differ in **{cmp.num_different:,} of {cmp.num_values:,}** values (by at most "
            f"{cmp.max_difference}).")
    shown = (("rounded", cmp.rounded), ("truncated", cmp.truncated), ("pixels that differ (white)", cmp.mask))
    return RoundingSummary(text, tuple((ti.display_array(t)[0], name) for name, t in shown))
