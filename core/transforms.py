"""Image transform pipelines as plain data, run with the real torchvision classes, stage by stage.

    steps = [new_step("Resize", size=[64, 48]), new_step("RandomHorizontalFlip"), new_step("ToTensor")]
    result = run_pipeline(load_sample_photo(), steps, seed=3)
    result.stages[-1].output          # what torch.manual_seed(3); transforms.Compose([...])(img) gives
    result.stats                      # one row per stage: type, shape, dtype, min, max, mean, std
    print(render_code(steps, seed=3)) # the same pipeline as Python source

A pipeline is a list of `{"name": ..., "params": {...}}` dicts (JSON-friendly, lists not tuples);
`STEP_SPECS` says, per step name, its parameters (kind, default, range), what input it takes and
whether it is random. Anything a user can get wrong raises `TransformError`, one line naming the
step, the parameter, the value and what is allowed. Sizes follow torchvision: a pair is
(height, width), while PIL's `.size` is (width, height); `size_order_note` spells this out.
torchvision is imported here and nowhere else in `core` (it costs seconds to import). The images a
pipeline starts from, stages as arrays to show, and rounding back to 8 bits are in `core.transformimages`.
"""

from __future__ import annotations

import copy
import math
import numbers
import secrets
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from core.errors import first_line

MAX_SIDE = 2048                       # largest size a step may ask for, in pixels
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
NORMALIZE_PRESETS = {"ImageNet": (IMAGENET_MEAN, IMAGENET_STD), "0.5 (any channels)": ([0.5], [0.5])}
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
_RNG_LOCK = threading.Lock()          # pages of several sessions share the global torch RNG


class TransformError(ValueError):
    """A pipeline, a parameter or an image a user supplied cannot be used; the message is one line."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a step: `kind` picks the checker (see CHECKERS); low/high bound numbers."""

    name: str
    kind: str
    default: object
    low: float = 0
    high: float = 1
    choices: tuple = ()
    help: str = ""


@dataclass(frozen=True)
class StepSpec:
    """A torchvision transform class by name: its parameters, input ("pil", "tensor", "any"),
    output ("pil", "tensor", "same"), whether it draws random numbers, and a hint for failures."""

    name: str
    params: tuple[ParamSpec, ...]
    takes: str = "any"
    gives: str = "same"
    random: bool = False
    summary: str = ""
    hint: str = "check its parameters against the image size"


def _size(default) -> ParamSpec:
    return ParamSpec("size", "size", default, 1, MAX_SIDE,
                     help="one number n, or two numbers: height, width (torchvision's order, not PIL's)")


_P = ParamSpec("p", "float", 0.5, 0.0, 1.0, help="probability of applying it")
_BILINEAR = ParamSpec("interpolation", "choice", "bilinear", choices=INTERPOLATIONS)
_NEAREST = ParamSpec("interpolation", "choice", "nearest", choices=INTERPOLATIONS)
_ANTIALIAS = ParamSpec("antialias", "bool", True)
STEP_SPECS = {spec.name: spec for spec in (
    StepSpec("ToTensor", (), "pil", "tensor", summary="PIL (w, h) uint8 0..255 -> tensor (C, H, W) float 0..1"),
    StepSpec("Normalize", (ParamSpec("mean", "floats", IMAGENET_MEAN, -10.0, 10.0),
                           ParamSpec("std", "floats", IMAGENET_STD, 1e-6, 100.0)), "tensor",
             summary="(x - mean) / std per channel",
             hint="give one mean and std per channel (1 for grayscale, 3 for RGB), or use the 0.5 preset"),
    StepSpec("ToPILImage", (), "tensor", "pil", summary="tensor -> PIL image (multiplies by 255 and truncates)"),
    StepSpec("Resize", (_size(128), _BILINEAR, _ANTIALIAS),
             summary="n: shorter side to n, aspect kept; (h, w): exactly that"),
    StepSpec("CenterCrop", (_size(112),), summary="crop the centre; pads with zeros when the image is smaller"),
    StepSpec("RandomCrop", (_size(96), ParamSpec("padding", "int", 0, 0, 512),
                            ParamSpec("pad_if_needed", "bool", False)), random=True,
             summary="crop at a random place", hint="use a size no bigger than the image, or turn on pad_if_needed"),
    StepSpec("RandomResizedCrop", (_size([96, 128]), ParamSpec("scale", "range", [0.08, 1.0], 0.01, 1.0),
                                   ParamSpec("ratio", "range", [0.75, 4 / 3], 0.1, 10.0), _BILINEAR, _ANTIALIAS),
             random=True, summary="crop a random area and aspect ratio, then resize"),
    StepSpec("RandomHorizontalFlip", (_P,), random=True, summary="mirror left-right with probability p"),
    StepSpec("RandomVerticalFlip", (_P,), random=True, summary="mirror top-bottom with probability p"),
    StepSpec("RandomRotation", (ParamSpec("degrees", "float", 30.0, 0.0, 180.0, help="angle drawn from ±degrees"),
                                _NEAREST, ParamSpec("expand", "bool", False)),
             random=True, summary="rotate by a random angle"),
    StepSpec("ColorJitter", tuple(ParamSpec(n, "float", d, 0.0, h) for n, d, h in (
        ("brightness", 0.4, 2.0), ("contrast", 0.4, 2.0), ("saturation", 0.4, 2.0), ("hue", 0.1, 0.5))),
             random=True, summary="random brightness, contrast, saturation and hue, in random order"),
    StepSpec("Grayscale", (ParamSpec("num_output_channels", "choice", 1, choices=(1, 3)),),
             summary="to gray; 3 output channels keep RGB-shaped input for later steps"),
    StepSpec("GaussianBlur", (ParamSpec("kernel_size", "odd_int", 5, 1, 99),
                              ParamSpec("sigma", "range", [0.1, 2.0], 0.1, 20.0)), random=True,
             summary="blur with a sigma drawn from the range", hint="use a kernel_size smaller than the image"),
    StepSpec("RandomErasing", (_P, ParamSpec("scale", "range", [0.02, 0.33], 0.001, 1.0),
                               ParamSpec("ratio", "range", [0.3, 3.3], 0.1, 10.0),
                               ParamSpec("value", "float", 0.0, -10.0, 10.0)), "tensor", random=True,
             summary="blank a random rectangle (tensors only)"),
)}
_WHAT = {"pil": "a PIL image", "tensor": "a tensor"}
_FIX = {"tensor": "add ToTensor before it", "pil": "remove it, or add ToPILImage before it"}


# -- checking parameters ---------------------------------------------------------------------------

def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_number(spec, v, integral=False):
    ok = (_is_int(v) if integral else _is_number(v)) and spec.low <= v <= spec.high
    return (int(v) if integral else float(v)) if ok else None


def _check_range(spec, v):
    ok = isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_number(x) for x in v)
    return [float(x) for x in v] if ok and spec.low <= v[0] <= v[1] <= spec.high else None


def _check_size(spec, v):
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return [int(x) for x in v] if all(_check_number(spec, x, True) is not None for x in v) else None
    return _check_number(spec, v, integral=True)


def _check_floats(spec, v):
    ok = isinstance(v, (list, tuple)) and len(v) in (1, 3) and all(_check_number(spec, x) is not None for x in v)
    return [float(x) for x in v] if ok else None


# kind -> (checker returning the clean value or None, what is allowed)
CHECKERS = {
    "int": (lambda s, v: _check_number(s, v, True), lambda s: f"an integer {s.low}..{s.high}"),
    "odd_int": (lambda s, v: v if _check_number(s, v, True) is not None and v % 2 == 1 else None,
                lambda s: f"an odd integer {s.low}..{s.high}"),
    "float": (_check_number, lambda s: f"a number {s.low}..{s.high}"),
    "bool": (lambda s, v: v if isinstance(v, bool) else None, lambda s: "true or false"),
    "choice": (lambda s, v: v if any(type(v) is type(c) and v == c for c in s.choices) else None,
               lambda s: "one of: " + ", ".join(map(str, s.choices))),
    "size": (_check_size, lambda s: f"an integer {s.low}..{s.high} or a pair (height, width) of them"),
    "range": (_check_range, lambda s: f"a pair (min, max) with {s.low} <= min <= max <= {s.high:.4g}"),
    "floats": (_check_floats, lambda s: f"1 or 3 numbers (one per channel), each {s.low:g}..{s.high:g}"),
}


def check_param(where: str, spec: ParamSpec, value):
    """The clean (JSON-friendly) value, or TransformError naming step, parameter, value and what is allowed."""
    check, allowed = CHECKERS[spec.kind]
    clean = check(spec, value)
    if clean is None:
        raise TransformError(f"{where}: {spec.name}={value!r} is not allowed; use {allowed(spec)}")
    return clean


def parse_param(step_name: str, spec: ParamSpec, text: str):
    """Text typed for a size or floats parameter ("64", "64, 48", "0.5, 0.5, 0.5") -> a checked value."""
    parts = str(text).replace(",", " ").split()
    try:
        values = [int(part) if spec.kind == "size" else float(part) for part in parts]
        return check_param(step_name, spec, values[0] if spec.kind == "size" and len(values) == 1 else values)
    except ValueError:
        raise TransformError(f"{step_name}: {spec.name}={text!r} is not allowed; "
                             f"use {CHECKERS[spec.kind][1](spec)}") from None


def format_param(value) -> str:
    """The text shown for a size or floats value: 64 -> "64", [64, 48] -> "64, 48"."""
    return ", ".join(f"{x:g}" for x in value) if isinstance(value, (list, tuple)) else f"{value:g}"


# -- pipelines as data -----------------------------------------------------------------------------

def spec_of(name: str) -> StepSpec:
    if not isinstance(name, str) or name not in STEP_SPECS:
        raise TransformError(f"unknown transform step {name!r}; choose one of: {', '.join(STEP_SPECS)}")
    return STEP_SPECS[name]


def new_step(name: str, **params) -> dict:
    """A step dict with the spec's defaults, overridden by `params` (checked)."""
    spec = spec_of(name)
    values = {p.name: copy.deepcopy(p.default) for p in spec.params}
    return validate_step({"name": name, "params": {**values, **params}})


def default_pipeline() -> list[dict]:
    return [new_step("RandomResizedCrop"), new_step("RandomHorizontalFlip"), new_step("ColorJitter"),
            new_step("ToTensor"), new_step("Normalize")]


def validate_step(step, position: int = 1) -> dict:
    """A clean copy of one step dict; missing parameters take their defaults."""
    if not isinstance(step, dict) or not isinstance(step.get("params", {}), dict) or set(step) - {"name", "params"}:
        raise TransformError(f"step {position}: expected {{'name': ..., 'params': {{...}}}}, got {step!r}")
    spec = spec_of(step.get("name"))
    where = f"step {position} {spec.name}"
    given = step.get("params", {})
    unknown = set(given) - {p.name for p in spec.params}
    if unknown:
        valid = ", ".join(p.name for p in spec.params) or "none"
        raise TransformError(f"{where}: unknown parameter {sorted(unknown)[0]!r}; valid parameters: {valid}")
    params = {p.name: check_param(where, p, given.get(p.name, copy.deepcopy(p.default))) for p in spec.params}
    return {"name": spec.name, "params": params}


def validate_pipeline(steps, start: str = "pil") -> list[dict]:
    """Clean copies of all steps; also checks each step gets the input type it takes (PIL or tensor)."""
    if not isinstance(steps, (list, tuple)):
        raise TransformError(f"a pipeline is a list of steps, got {type(steps).__name__}")
    clean, current = [], start
    for position, step in enumerate(steps, 1):
        clean.append(validate_step(step, position))
        spec = STEP_SPECS[clean[-1]["name"]]
        if spec.takes not in ("any", current):
            raise TransformError(f"step {position} {spec.name} needs {_WHAT[spec.takes]} but gets "
                                 f"{_WHAT[current]}; {_FIX[spec.takes]}")
        current = current if spec.gives == "same" else spec.gives
    return clean


def move_step(steps: list[dict], index: int, offset: int) -> list[dict]:
    """A copy of `steps` with step `index` moved by `offset` places (clamped to the ends)."""
    moved = list(steps)
    target = min(max(index + offset, 0), len(moved) - 1)
    moved.insert(target, moved.pop(index))
    return moved


def _torchvision_value(spec: ParamSpec, value):
    if spec.name == "interpolation":
        return InterpolationMode(value)
    return tuple(value) if isinstance(value, list) else value


def build_transform(step: dict):
    """The torchvision transform object for one validated step."""
    spec = STEP_SPECS[step["name"]]
    kwargs = {p.name: _torchvision_value(p, step["params"][p.name]) for p in spec.params}
    return getattr(transforms, spec.name)(**kwargs)


def render_code(steps, seed: int) -> str:
    """Python source building the pipeline with torchvision and running it with `seed`."""
    lines = ["import torch", "from torchvision import transforms",
             "from torchvision.transforms import InterpolationMode", "", "pipeline = transforms.Compose(["]
    for step in validate_pipeline(steps):
        spec = STEP_SPECS[step["name"]]
        args = ", ".join(f"{p.name}={_render_value(p, step['params'][p.name])}" for p in spec.params)
        lines.append(f"    transforms.{spec.name}({args}),")
    lines += ["])", "", f"torch.manual_seed({int(seed)})",
              "output = pipeline(image)  # image: a PIL image, e.g. Image.open(path).convert(\"RGB\")"]
    return "\n".join(lines) + "\n"


def _render_value(spec: ParamSpec, value) -> str:
    converted = _torchvision_value(spec, value)
    return f"InterpolationMode.{converted.name}" if isinstance(converted, InterpolationMode) else repr(converted)


def new_seed() -> int:
    return secrets.randbelow(2**31)


# -- running ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    """The image after `index` steps (0: the original); `output` is a PIL image or a tensor."""

    index: int
    name: str
    output: object


@dataclass(frozen=True)
class PipelineResult:
    """The validated steps, every stage (original first) and their statistics."""

    steps: tuple[dict, ...]
    stages: tuple[Stage, ...]
    stats: pd.DataFrame


def run_pipeline(image, steps, seed: int) -> PipelineResult:
    """Every stage of the pipeline on `image`, exactly as `torch.manual_seed(seed)` then
    `transforms.Compose([...])(image)` would compute it. The caller's RNG state is left untouched."""
    clean = validate_pipeline(steps, start="tensor" if torch.is_tensor(image) else "pil")
    built = [build_transform(step) for step in clean]
    outputs = [image]
    with _RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for position, (step, transform) in enumerate(zip(clean, built), 1):
            outputs.append(_apply(position, step["name"], transform, outputs[-1]))
    stages = tuple(Stage(i, "original" if i == 0 else clean[i - 1]["name"], x) for i, x in enumerate(outputs))
    return PipelineResult(tuple(clean), stages, stage_stats(stages))


def _apply(position: int, name: str, transform, x):
    try:
        return transform(x)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise TransformError(f"step {position} {name} failed on {describe_value(x)}: {first_line(exc)}; "
                             f"{STEP_SPECS[name].hint}") from None


def describe_value(x) -> str:
    if isinstance(x, Image.Image):
        return f"a PIL {x.mode} image with .size (w, h) = {x.size}"
    return f"a {str(x.dtype).replace('torch.', '')} tensor of shape {tuple(x.shape)}"


def stage_stats(stages) -> pd.DataFrame:
    """One row per stage: type, shape (PIL: (w, h)), dtype, min, max, mean, std (unbiased) of its values."""
    return pd.DataFrame([_stats_row(stage) for stage in stages])


def _stats_row(stage: Stage) -> dict:
    x = stage.output
    if isinstance(x, Image.Image):
        kind, shape, dtype = f"PIL {x.mode}", f"(w, h) = {x.size}", "uint8"
        values = torch.from_numpy(np.asarray(x, dtype=np.float64))
    else:
        kind, shape, dtype = "tensor", f"(C, H, W) = {tuple(x.shape)}", str(x.dtype).replace("torch.", "")
        values = x.detach().double()
    std = float(values.std()) if values.numel() > 1 else 0.0
    return {"stage": stage.index, "step": stage.name, "type": kind, "shape": shape, "dtype": dtype,
            "min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()), "std": std}


def size_order_note(step: dict) -> str:
    """Where torchvision's (h, w) and PIL's (w, h) differ for this step, a sentence saying so; else ""."""
    size = step.get("params", {}).get("size")
    name = step.get("name")
    if isinstance(size, (list, tuple)) and len(size) == 2 and size[0] != size[1]:
        h, w = size
        return (f"{name} size=({h}, {w}) is (height, width): the output is {h} px high and {w} px wide, "
                f"so PIL's .size reports (w, h) = ({w}, {h}) and a tensor's shape ends in ({h}, {w}).")
    if name == "Resize" and _is_int(size):
        return (f"Resize size={size} scales the shorter side to {size} px and keeps the aspect ratio; "
                "give (height, width) for an exact size.")
    return ""


def image_size_note(image: Image.Image) -> str:
    w, h = image.size
    channels = len(image.getbands())
    return f"PIL's .size is (w, h) = ({w}, {h}); ToTensor makes it (C, H, W) = ({channels}, {h}, {w})."
