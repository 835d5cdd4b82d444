"""Each schedule against hand-computed values and against PyTorch's scheduler of the same idea."""

import math

import pytest
import torch

from core.config import TrainConfig
from core.schedules import (cosine_lr, onecycle_lr, plateau_lr, scheduled_lr, step_lr, table_lr)


def torch_lrs(make_scheduler, num_calls, lr=0.1, metrics=None):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(opt)
    lrs = []
    for i in range(num_calls):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step(*([metrics[i]] if metrics is not None else []))
    return lrs


def test_table_hand_values():
    table = {3: 1e-4, 6: 1e-5}
    assert [table_lr(1e-3, table, e) for e in range(1, 8)] == [1e-3, 1e-3, 1e-4, 1e-4, 1e-4, 1e-5, 1e-5]


def test_table_matches_the_template_convention_shifted_by_two():
    # The template set lr_adjust[e] after its 0-based epoch e; so 1-based epoch e + 2 is the first to use it.
    template = {2: 5e-5, 4: 1e-5}
    ours = {e + 2: lr for e, lr in template.items()}
    template_lrs, lr = [], 1e-3
    for epoch0 in range(8):
        template_lrs.append(lr)
        lr = template.get(epoch0, lr)
    assert [table_lr(1e-3, ours, e) for e in range(1, 9)] == template_lrs


def test_step_matches_torch():
    ours = [step_lr(0.1, e, 3, 0.5) for e in range(1, 11)]
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), 10)
    assert ours == pytest.approx(ref)
    assert ours[:4] == pytest.approx([0.1, 0.1, 0.1, 0.05])


def test_cosine_matches_torch():
    ours = [cosine_lr(0.1, e, 10, 0.001) for e in range(1, 11)]
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 10)
    assert ours == pytest.approx(ref, rel=1e-9)
    assert cosine_lr(0.1, 6, 10, 0.0) == pytest.approx(0.05)


def test_onecycle_matches_torch():
    total = 37
    ours = [onecycle_lr(0.1, s, total) for s in range(total)]
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=total,
                                                                  cycle_momentum=False), total)
    assert ours == pytest.approx(ref, rel=1e-9)
    assert ours[0] == pytest.approx(0.1 / 25)
    assert max(ours) == pytest.approx(0.1, rel=1e-3)   # the peak falls between two steps


@pytest.mark.parametrize("mode,values", [
    ("min", [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.5, 0.6, 0.6, 0.6]),
    ("max", [0.1, 0.2, 0.2, 0.19, 0.18, 0.3, 0.3, 0.3, 0.3, 0.31]),
])
def test_plateau_matches_torch(mode, values):
    ours = [plateau_lr(0.1, values[:i], mode, 1, 0.5, 0.001, 0.01) for i in range(len(values))]
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
        o, mode=mode, factor=0.5, patience=1, threshold=0.01, threshold_mode="abs", min_lr=0.001),
        len(values), metrics=values)
    assert ours == pytest.approx(ref)
    assert min(ours) < 0.1


def test_scheduled_lr_dispatch():
    cfg = TrainConfig(lr=0.1, schedule="step", step_size=2, gamma=0.1, epochs=5)
    assert scheduled_lr(cfg, 3, 0, 10, []) == pytest.approx(0.01)
    assert scheduled_lr(TrainConfig(lr=0.1), 9, 0, 10, []) == 0.1
    onecycle = TrainConfig(lr=0.1, schedule="onecycle", epochs=2)
    assert scheduled_lr(onecycle, 1, 0, 10, []) == pytest.approx(0.1 / 25)
    assert math.isclose(scheduled_lr(onecycle, 2, 19, 10, []), 0.1 / 25 / 1e4, rel_tol=1e-6)
