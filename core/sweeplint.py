"""Lint for sweep configs: warnings about a valid config that is probably not what was meant.

    from core.sweeplint import lint
    lint(load_spec("sweep.yaml"))     # ['parameters.lr: log_uniform bounds are natural logs, ...', ...]

Each warning is one line naming the parameter (or key) and what to write instead. Lint never raises:
invalid configs are `core.sweepspec`'s to refuse.
"""

from __future__ import annotations

import json
import math

from core.sweepparams import ParamSpec
from core.sweepspec import SweepSpec, show


def _lint_log_bounds(p: ParamSpec) -> list[str]:
    if p.distribution not in ("log_uniform", "q_log_uniform"):
        return []
    if p.min < 0 and p.max <= 50:                 # values below 1 and no overflow-sized bounds
        return []
    return [f"{p.where}: {p.distribution} bounds are natural logs, so min {p.min:g}, max {p.max:g} give "
            f"values between {math.exp(p.min):.4g} and {math.exp(p.max):.4g}; for values between "
            f"{p.min:g} and {p.max:g} use distribution {p.distribution}_values"]


def _is_multiple(x: float, q: float) -> bool:
    ratio = x / q
    return abs(ratio - round(ratio)) < 1e-9


def _lint_param(p: ParamSpec, method: str) -> list[str]:
    notes = _lint_log_bounds(p)
    if p.distribution == "int_uniform" and not (isinstance(p.min, int) and isinstance(p.max, int)):
        notes.append(f"{p.where}: int_uniform bounds {p.min!r}, {p.max!r} are floats; "
                     f"they are used as the integers {int(p.min)} and {int(p.max)}")
    if p.distribution == "int_uniform" and p.max - p.min == 1 and method != "grid":
        notes.append(f"{p.where}: int_uniform {p.min!r}..{p.max!r} gives only {int(p.min)} and "
                     f"{int(p.max)}; for real numbers write the bounds as floats ({float(p.min)!r})")
    if method == "grid" and p.distribution == "q_uniform" and _is_multiple(p.max - p.min, p.q):
        notes.append(f"{p.where}: grid takes q_uniform as arange(min, max, q), which leaves out "
                     f"max={p.max!r}; raise max by q to include it")
    if method != "grid" and p.distribution == "q_uniform" and not (
            _is_multiple(p.min, p.q) and _is_multiple(p.max, p.q)):
        notes.append(f"{p.where}: q_uniform rounds to multiples of q={p.q!r} counted from 0, so samples "
                     f"can fall outside [{p.min!r}, {p.max!r}]; use bounds that are multiples of q")
    if p.distribution == "q_log_uniform_values" and p.min < p.q / 2:
        notes.append(f"{p.where}: min {p.min!r} is below q/2, so samples can round down to 0 (q={p.q!r})")
    if p.distribution == "q_beta" and p.q >= 0.5:
        notes.append(f"{p.where}: beta lies in [0, 1], so q={p.q!r} rounds every sample to 0 or 1; "
                     "use a smaller q such as 0.05")
    seen = [json.dumps(v, sort_keys=True, default=repr) for v in p.values]
    if p.distribution == "categorical" and len(set(seen)) < len(seen):
        notes.append(f"{p.where}: values repeat; grid skips repeats, random and bayes weight them more")
    return notes


def _lint_metric(spec: SweepSpec) -> list[str]:
    if spec.metric is None:
        return []
    name, goal = spec.metric.name.lower(), spec.metric.goal
    if goal == "maximize" and ("loss" in name or "error" in name):
        return [f"metric: goal maximize for {show(spec.metric.name)}; losses and errors are usually minimised"]
    if goal == "minimize" and ("acc" in name or "f1" in name or "auc" in name):
        return [f"metric: goal minimize for {show(spec.metric.name)}; did you mean goal: maximize?"]
    return []


def lint(spec: SweepSpec) -> list[str]:
    """Warnings about a valid config that is probably not what was meant (one line each)."""
    notes = [n for p in spec.parameters for n in _lint_param(p, spec.method)] + _lint_metric(spec)
    hb = spec.early_terminate
    if hb is not None and hb.uses_max_iter and hb.min_iter is not None:
        notes.append("early_terminate: both min_iter and max_iter+s given; brackets come from max_iter and s")
    if spec.method == "grid":
        from core.sweepsample import grid_size    # imported here: only grids need it
        size = grid_size(spec)
        if spec.run_cap is not None and size > spec.run_cap:
            notes.append(f"run_cap: the grid has {size} points but run_cap is {spec.run_cap}; "
                         f"only the first {spec.run_cap} will run")
    if spec.method == "bayes" and all(p.distribution == "constant" for p in spec.parameters):
        notes.append("parameters: every parameter is constant, so there is nothing to search")
    return notes
