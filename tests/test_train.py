import dataclasses
import json
import threading

import pytest
import torch

import core.epochfile
from core.checkpoint import load_model
from core.config import ConfigError, TrainConfig
from core.control import TrainControl
from core.datasets import load_dataset
from core.predict import Predictor
from core.status import RunStatus
from core.training import EpochMetrics, find_non_finite, train

FAST = dict(dataset="digits", epochs=3, batch_size=128)


def run(config, **kwargs):
    control = kwargs.pop("control", None) or TrainControl()
    metrics = list(train(config, control=control, **kwargs))
    return metrics, control.outcome


def comparable(m: EpochMetrics) -> dict:
    return {k: v for k, v in dataclasses.asdict(m).items() if k not in ("seconds", "samples_per_s")}


def test_yields_frozen_python_scalar_metrics():
    metrics, outcome = run(TrainConfig(**FAST))
    assert [m.epoch for m in metrics] == [1, 2, 3]
    for m in metrics:
        assert all(isinstance(v, (int, float, bool, tuple, type(None))) for v in dataclasses.asdict(m).values())
        with pytest.raises(dataclasses.FrozenInstanceError):
            m.epoch = 9
    assert outcome.status is RunStatus.FINISHED and outcome.epochs_completed == 3
    assert metrics[-1].step == 3 * -(-1438 // 128)


def test_same_seed_gives_identical_metrics_and_other_seed_does_not():
    a, _ = run(TrainConfig(**FAST, seed=7))
    b, _ = run(TrainConfig(**FAST, seed=7))
    c, _ = run(TrainConfig(**FAST, seed=8))
    assert [comparable(m) for m in a] == [comparable(m) for m in b]
    assert [m.train_loss for m in a] != [m.train_loss for m in c]


def test_early_stopping_fires_at_the_right_epoch():
    # min_delta is so large that nothing after the first epoch counts as an improvement
    metrics, outcome = run(TrainConfig(**{**FAST, "epochs": 10}, patience=2, min_delta=100.0))
    assert [m.epoch for m in metrics] == [1, 2, 3]
    assert [m.early_stop_counter for m in metrics] == [0, 1, 2]
    assert [m.is_best for m in metrics] == [True, False, False]
    assert outcome.status is RunStatus.FINISHED and "early stopped after epoch 3" in outcome.reason
    assert outcome.best_epoch == 1


def test_nan_in_data_ends_the_run_as_diverged_with_epoch_and_step(tmp_path):
    config = TrainConfig(dataset="threshold", batch_size=18, epochs=3)
    clean = load_dataset(config)
    first, _ = run(config, checkpoint_dir=tmp_path)           # a good best checkpoint exists
    before = (tmp_path / "best.safetensors").read_bytes()
    bad_x = clean.train_x.clone()
    bad_x[5, 0] = float("nan")
    metrics, outcome = run(config, data=dataclasses.replace(clean, train_x=bad_x), checkpoint_dir=tmp_path)
    assert metrics == []
    assert outcome.status is RunStatus.DIVERGED
    assert "epoch 1, step 1" in outcome.reason and "nan" in outcome.reason
    assert (tmp_path / "best.safetensors").read_bytes() == before


@pytest.mark.parametrize("values,expected", [
    ([1.0], None), ([float("nan")], 0), ([float("-inf")], 0), ([0.5, 2.0, 3.0], None),
    ([0.5, float("inf"), float("nan")], 1), ([float("nan"), 1.0], 0), ([], None),
])
def test_find_non_finite_gives_the_first_bad_index(values, expected):
    assert find_non_finite(torch.tensor(values)) == expected


def test_a_nan_at_a_later_step_is_reported_at_that_step():
    config = TrainConfig(dataset="digits", batch_size=64, epochs=2)
    clean = load_dataset(config)
    bad_x = clean.train_x.clone()
    bad_x[:, 0] = float("nan")
    order = torch.randperm(clean.num_train, generator=torch.Generator().manual_seed(config.seed))
    keep = order[: 64 * 4]                                       # the first 4 batches are clean
    bad_x[keep] = clean.train_x[keep]
    _, outcome = run(config, data=dataclasses.replace(clean, train_x=bad_x))
    assert outcome.status is RunStatus.DIVERGED and "epoch 1, step 5 of the epoch" in outcome.reason


def test_huge_learning_rate_diverges():
    config = TrainConfig(dataset="digits", activation="leaky_relu", optimizer="sgd", lr=100.0, epochs=5)
    metrics, outcome = run(config)
    assert outcome.status is RunStatus.DIVERGED
    assert "loss became" in outcome.reason and len(metrics) < 5


class StopAfterPolls(TrainControl):
    def __init__(self, polls):
        super().__init__()
        self.polls, self.limit = 0, polls

    def poll(self):
        self.polls += 1
        if self.polls == self.limit:
            self.stop("test stop")


def test_stop_flag_is_honoured_within_one_batch():
    control = StopAfterPolls(5)                       # digits at batch 64: 23 steps per epoch
    metrics, outcome = run(TrainConfig(dataset="digits", epochs=2), control=control)
    assert metrics == [] and control.polls == 5
    assert outcome.status is RunStatus.STOPPED and outcome.reason == "test stop"


def test_stop_between_epochs_keeps_completed_epochs():
    control = TrainControl()
    seen = []
    for m in train(TrainConfig(**{**FAST, "epochs": 5}), control=control):
        seen.append(m.epoch)
        control.stop("enough")
    assert seen == [1] and control.outcome.epochs_completed == 1
    assert control.outcome.status is RunStatus.STOPPED


def test_live_changes_apply_at_the_next_step_and_show_in_metrics():
    control = TrainControl()
    gen = train(TrainConfig(**FAST, optimizer="sgd"), control=control)
    first = next(gen)
    control.set(lr=0.05, momentum=0.5, weight_decay=0.01, grad_clip=1.0)
    second = next(gen)
    assert first.lr == 1e-3 and second.lr == 0.05
    assert (second.momentum, second.weight_decay, second.grad_clip) == (0.5, 0.01, 1.0)
    assert {c[1]: c[2] for c in second.changes} == {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01,
                                                    "grad_clip": 1.0}
    assert all(c[0] == first.step for c in second.changes)
    with pytest.raises(ConfigError, match="lr"):
        control.set(lr=-1)
    with pytest.raises(ValueError, match="live fields"):
        control.set(batch_size=3)
    gen.close()
    assert control.outcome.status is RunStatus.STOPPED


def test_pause_holds_training_until_resumed():
    import threading
    import time

    control = TrainControl()
    control.pause()
    done = []
    worker = threading.Thread(target=lambda: done.extend(train(TrainConfig(**{**FAST, "epochs": 1}),
                                                               control=control)))
    worker.start()
    time.sleep(0.5)
    assert done == [] and worker.is_alive()
    control.resume()
    worker.join(timeout=30)
    assert len(done) == 1


def test_best_checkpoint_round_trip(tmp_path):
    config = TrainConfig(**FAST)
    metrics, outcome = run(config, checkpoint_dir=tmp_path)
    best = max(metrics, key=lambda m: -m.val_loss)
    assert outcome.best_epoch == best.epoch and outcome.checkpoint.endswith("best.safetensors")
    model, meta = load_model(tmp_path)
    assert meta["epoch"] == best.epoch and meta["config"] == config.to_dict()
    data = load_dataset(config)
    with torch.inference_mode():
        acc = (model(data.val_x).argmax(1) == data.val_y).float().mean().item()
    assert acc == pytest.approx(best.val_acc)
    assert not list(tmp_path.glob("*.tmp"))


def test_the_readable_copy_of_the_best_record_is_written_when_the_run_ends(tmp_path):
    gen = train(TrainConfig(**{**FAST, "epochs": 4}), checkpoint_dir=tmp_path)
    first, second = next(gen), next(gen)
    assert first.is_best and not (tmp_path / "best.json").exists()     # per-epoch writes leave it to the end
    rest = list(gen)
    _, meta = load_model(tmp_path)
    copy = json.loads((tmp_path / "best.json").read_text())
    assert copy == meta and copy["epoch"] == max([first, second, *rest], key=lambda m: -m.val_loss).epoch


def test_a_run_closed_by_its_caller_still_gets_its_readable_copy(tmp_path):
    gen = train(TrainConfig(**{**FAST, "epochs": 4}), checkpoint_dir=tmp_path)
    next(gen), next(gen)
    gen.close()
    _, meta = load_model(tmp_path)
    assert json.loads((tmp_path / "best.json").read_text()) == meta and meta["epoch"] in (1, 2)


def test_record_steps_gives_one_loss_per_step():
    metrics, _ = run(TrainConfig(**FAST), record_steps=True)
    assert len(metrics[0].step_losses) == -(-1438 // 128)
    assert sum(metrics[0].step_losses) / len(metrics[0].step_losses) == pytest.approx(metrics[0].train_loss, rel=0.1)


@pytest.mark.parametrize("schedule,extra", [("step", {"step_size": 1, "gamma": 0.5}), ("cosine", {}),
                                            ("table", {"lr_table": {2: 1e-4}}), ("onecycle", {}),
                                            ("plateau", {"plateau_patience": 0, "min_delta": 10.0})])
def test_schedules_drive_the_optimizer(schedule, extra):
    metrics, _ = run(TrainConfig(**FAST, schedule=schedule, **extra))
    assert metrics[-1].lr < metrics[0].lr or schedule == "onecycle"
    if schedule == "table":
        assert [m.lr for m in metrics] == [1e-3, 1e-4, 1e-4]


def test_batch_size_larger_than_the_data_is_refused_before_training():
    with pytest.raises(ConfigError, match="batch_size: 5000 is larger than the 1438"):
        next(train(TrainConfig(dataset="digits", batch_size=5000)))


@pytest.mark.slow
def test_digits_mlp_reaches_95_percent_in_20_epochs():
    metrics, _ = run(TrainConfig(dataset="digits", model="mlp", epochs=20))
    assert max(m.val_acc for m in metrics) >= 0.95


def test_threshold_toy_with_the_templates_settings(tmp_path):
    config = TrainConfig(dataset="threshold", model="mlp", hidden=(32, 16), batch_size=1, lr=1e-3, epochs=10)
    run(config, checkpoint_dir=tmp_path)
    predictor = Predictor.from_folder(tmp_path)
    assert predictor.predict(24).label == "> 8"
    assert predictor.predict(3.14).label == "<= 8"


def test_resume_continues_exactly_where_a_stopped_run_left_off(tmp_path):
    config = TrainConfig(dataset="digits", epochs=5, batch_size=128, optimizer="adamw", schedule="cosine")
    straight, _ = run(config, checkpoint_dir=tmp_path / "straight")
    control = TrainControl()
    first = []
    for m in train(config, control=control, checkpoint_dir=tmp_path / "resumed"):
        first.append(m)
        if m.epoch == 2:
            control.stop("pause for now")
    assert control.outcome.status is RunStatus.STOPPED and len(first) == 2
    rest, outcome = run(config, checkpoint_dir=tmp_path / "resumed", resume=True)
    assert [m.epoch for m in rest] == [3, 4, 5]
    assert [comparable(m) for m in first + rest] == [comparable(m) for m in straight]
    assert outcome.status is RunStatus.FINISHED and outcome.epochs_completed == 5


def test_resume_without_a_last_checkpoint_is_a_clear_error(tmp_path):
    from core.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint"):
        run(TrainConfig(dataset="threshold", batch_size=6), checkpoint_dir=tmp_path, resume=True)


@pytest.mark.parametrize("schedule", ["plateau", "cosine", "onecycle"])
def test_the_schedule_is_worked_out_once_per_epoch_unless_it_moves_every_step(schedule, monkeypatch):
    import core.training
    from core.schedules import plateau_lr, scheduled_lr

    calls = []
    monkeypatch.setattr(core.training, "scheduled_lr", lambda *args: calls.append(args[1]) or scheduled_lr(*args))
    config = TrainConfig(**{**FAST, "epochs": 4}, schedule=schedule, plateau_patience=0, min_delta=10.0)
    metrics, _ = run(config)
    steps = -(-1438 // config.batch_size)
    assert calls == ([1, 2, 3, 4] if schedule != "onecycle" else [e for e in (1, 2, 3, 4) for _ in range(steps)])
    if schedule == "plateau":                              # the lr that replaying the history gives
        history = [m.val_loss for m in metrics]
        assert [m.lr for m in metrics] == [plateau_lr(config.lr, history[:i], "min", 0, config.gamma, config.min_lr,
                                                      10.0) for i in range(4)]


def test_checkpoints_are_finished_in_another_thread_best_before_last(tmp_path, monkeypatch):
    written, real = [], core.epochfile.write_in_turn

    def recording(path, *parts, **options):
        written.append((path.stem, threading.get_ident()))
        real(path, *parts, **options)
    monkeypatch.setattr(core.epochfile, "write_in_turn", recording)
    metrics, outcome = run(TrainConfig(**{**FAST, "epochs": 4}), checkpoint_dir=tmp_path)
    expected = [stem for m in metrics for stem in (["best"] if m.is_best else []) + ["last"]]
    assert [stem for stem, _ in written] == expected
    assert threading.get_ident() not in {ident for _, ident in written}
    _, meta = load_model(tmp_path)
    assert meta["epoch"] == outcome.best_epoch


def test_a_checkpoint_write_that_fails_in_the_writer_fails_the_run(tmp_path, monkeypatch):
    calls, real = [], core.epochfile.write_in_turn

    def full_at_third(path, *parts, **options):
        calls.append(path.stem)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(path, *parts, **options)
    monkeypatch.setattr(core.epochfile, "write_in_turn", full_at_third)
    control = TrainControl()
    with pytest.raises(OSError, match="No space left"):
        run(TrainConfig(**{**FAST, "epochs": 6}), checkpoint_dir=tmp_path, control=control)
    assert control.outcome.status is RunStatus.FAILED and "No space left" in control.outcome.reason
    assert control.outcome.epochs_completed < 6 and not list(tmp_path.glob(".*.tmp"))


def test_a_run_closed_at_an_epoch_that_improved_still_writes_that_best_checkpoint(tmp_path):
    gen = train(TrainConfig(**{**FAST, "epochs": 4}), checkpoint_dir=tmp_path)
    first = next(gen)
    gen.close()
    _, meta = load_model(tmp_path)
    assert first.is_best and meta["epoch"] == 1 and meta["val_loss"] == first.val_loss
