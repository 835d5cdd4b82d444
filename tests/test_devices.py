"""The engine on each device it supports: the CPU always, a CUDA GPU where there is one (CI has none,
so those cases skip there). Seeding, resuming, the per-step NaN check, checkpoints that load on the CPU,
and a tracked run from the CLI."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from core.config import TrainConfig
from core.control import TrainControl
from core.datasets import load_dataset
from core.predict import Predictor
from core.status import RunStatus
from core.training import train
from tests.conftest import REPO

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason="no CUDA device on this machine"))]
FAST = dict(dataset="digits", epochs=3, batch_size=128)


def run(config, **kwargs):
    control = kwargs.pop("control", None) or TrainControl()
    metrics = list(train(config, control=control, **kwargs))
    return metrics, control.outcome


def timeless(metrics):
    """Metrics without the wall-clock fields, which differ between two identical runs."""
    return [dataclasses.replace(m, seconds=0.0, samples_per_s=0.0) for m in metrics]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_same_seed_same_metrics(device, model):
    config = TrainConfig(**FAST, model=model, device=device, deterministic=True, seed=3)
    first, outcome = run(config)
    second, _ = run(config)
    assert outcome.status is RunStatus.FINISHED, outcome.reason
    assert timeless(first) == timeless(second)


@pytest.mark.parametrize("device", DEVICES)
def test_a_resumed_run_continues_as_if_never_stopped(device, tmp_path):
    config = TrainConfig(**{**FAST, "epochs": 4}, model="cnn", device=device, deterministic=True, seed=5)
    whole, _ = run(config)
    control = TrainControl()
    for m in train(config, control=control, checkpoint_dir=tmp_path):
        if m.epoch == 2:
            control.stop("pause here")
    resumed, outcome = run(config, checkpoint_dir=tmp_path, resume=True)
    assert outcome.status is RunStatus.FINISHED, outcome.reason
    assert [m.epoch for m in resumed] == [3, 4]
    assert timeless(resumed) == timeless(whole[2:])


@pytest.mark.parametrize("device", DEVICES)
def test_a_nan_at_a_later_step_is_reported_at_that_step(device):
    config = TrainConfig(dataset="digits", batch_size=64, epochs=2, device=device)
    clean = load_dataset(config)
    bad_x = clean.train_x.clone()
    bad_x[:, 0] = float("nan")
    shuffle = torch.Generator(device=device).manual_seed(config.seed)       # core's first epoch order
    order = torch.randperm(clean.num_train, generator=shuffle, device=device).cpu()
    keep = order[: 64 * 4]                                       # the first 4 batches are clean
    bad_x[keep] = clean.train_x[keep]
    _, outcome = run(config, data=dataclasses.replace(clean, train_x=bad_x))
    assert outcome.status is RunStatus.DIVERGED and "epoch 1, step 5 of the epoch" in outcome.reason


@pytest.mark.parametrize("device", DEVICES)
def test_a_checkpoint_predicts_on_the_cpu_what_training_measured(device, tmp_path):
    config = TrainConfig(**FAST, model="cnn", device=device)
    _, outcome = run(config, checkpoint_dir=tmp_path)
    predictor = Predictor.from_folder(tmp_path)
    assert {p.device.type for p in predictor.model.parameters()} == {"cpu"}
    data = load_dataset(TrainConfig(**FAST))
    predicted = predictor.probabilities(data.val_x.cpu()).argmax(1)
    accuracy = (predicted == data.val_y.cpu()).float().mean().item()
    assert accuracy == pytest.approx(outcome.best_val_acc, abs=1 / len(data.val_y))


@pytest.mark.parametrize("device", DEVICES)
def test_the_cli_trains_on_the_device_and_records_the_run(device, lab_home):
    done = subprocess.run([sys.executable, "-m", "core", "train", "--dataset", "digits", "--epochs", "2",
                           "--device", device, "--json"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "LAB_HOME": str(lab_home)}, timeout=300)
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["status"] == "finished"
    listed = subprocess.run([sys.executable, "-m", "core", "runs", "--json"], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "LAB_HOME": str(lab_home)}, timeout=300)
    record = json.loads(listed.stdout.splitlines()[0])
    assert record["config"]["device"] == device and record["summary"]["best_val_acc"] == final["best_val_acc"]


@pytest.mark.parametrize("device", DEVICES)
def test_loaded_adam_moments_take_the_layout_of_channels_last_weights(device):
    from core.resume import match_parameter_layouts

    def channels_last_weight():
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(8, 4, 5, 5, generator=generator).to(device, memory_format=torch.channels_last)
        return torch.nn.Parameter(weight)

    grad = torch.randn(8, 4, 5, 5, generator=torch.Generator().manual_seed(1)).to(device)
    going, resumed = channels_last_weight(), channels_last_weight()
    optimizer = torch.optim.Adam([going], lr=0.1, fused=True)
    going.grad = grad.clone(memory_format=torch.channels_last)
    optimizer.step()                                     # moments exist, in the weight's layout
    saved = optimizer.state_dict()
    saved["state"] = {i: {k: v.clone(memory_format=torch.contiguous_format) for k, v in s.items()}
                      for i, s in saved["state"].items()}
    with torch.no_grad():
        resumed.copy_(going)
    reloaded = torch.optim.Adam([resumed], lr=0.1, fused=True)
    reloaded.load_state_dict(saved)                      # as read back from safetensors: contiguous
    match_parameter_layouts(reloaded)
    for weight, opt in ((going, optimizer), (resumed, reloaded)):
        weight.grad = grad.clone(memory_format=torch.channels_last)
        opt.step()
    assert torch.equal(going, resumed)
