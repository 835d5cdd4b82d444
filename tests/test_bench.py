"""The tracking benchmark still runs and reports what its README promises (figures are never asserted:
they come from the script run by hand on a quiet machine)."""

import json
import subprocess
import sys

import pytest

from core.config import TrainConfig
from core.runs import EPOCH_KEYS, prepare_data
from core.training import train
from tests.conftest import REPO


@pytest.mark.slow
def test_bench_tracking_reports_every_arm_and_the_durable_floor_of_the_real_checkpoint(tmp_path):
    done = subprocess.run([sys.executable, "bench/bench_tracking.py", "--json", "--skip-cnn", "--calls", "20",
                           "--reps", "1", "--mlp-epochs", "3"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["log"]) == {"memory", "log_metrics", "wandb_log"}
    case = result["epochs"]["digits-mlp"]
    assert case["epoch_samples"] == {"off": 2, "checkpoints": 2, "on": 2, "thread": 2, "floor": 2, "wait": 2}  # 2-3
    wait = case["wait_control"]
    assert wait["ratio_on_wait"] == case["epoch_s"]["on"] / case["epoch_s"]["wait"]
    loop = case["floor_in_loop"]
    assert loop["ratio_on_floor"] == case["epoch_s"]["on"] / case["epoch_s"]["floor"]
    assert loop["ms_per_epoch"] == (case["epoch_s"]["floor"] - case["epoch_s"]["off"]) * 1e3
    assert case["met"] == (case["ratio_on_off"] <= 1 + result["targets"]["epoch_overhead"])
    off_cpu = case["off_cpu_ms"]
    assert set(off_cpu) == set(case["epoch_samples"])
    for arm, inside in (("on", case["inside_calls"]), ("thread", case["thread_writer"])):
        assert set(inside["by_call_ms"]) == {"record", "update", "checkpoints"} and min(inside["by_call_ms"].values()) > 0
        assert inside["ms_per_epoch"] == sum(inside["by_call_ms"].values()) < case["epoch_s"][arm] * 1e3
        assert inside["waited_ms"] == max(off_cpu[arm] - off_cpu["off"], 0.0)
        assert inside["cost_ms"] == inside["ms_per_epoch"] + inside["waited_ms"]
        on_ms = case["epoch_s"][arm] * 1e3
        assert inside["ratio"] == on_ms / (on_ms - inside["cost_ms"])
        assert inside["first_epoch_ms"] > 0
    assert case["inside_calls"]["writer_cpu_ms"] > 0 == case["thread_writer"]["writer_cpu_ms"]   # only a process

    config = TrainConfig(dataset="digits", model="mlp", batch_size=64, epochs=1)
    data = prepare_data(config)
    list(train(config, data, checkpoint_dir=tmp_path))
    floor = case["floor"]
    # the same tensors; the JSON record differs by its folder path and the epochs' history
    assert abs(floor["checkpoint_bytes"] - (tmp_path / "last.safetensors").stat().st_size) < 512
    assert floor["rows"] == len(EPOCH_KEYS) + 1 + -(-data.num_train // 64)
    assert floor["ms"] == floor["file_ms"] + floor["commit_ms"] > 0
    assert floor["kill_ms"] == floor["file_exchanged_ms"] + floor["commit_ms"]
    assert floor["renamed_ms"] == floor["file_renamed_ms"] + floor["commit_ms"]
    assert floor["in_place_ms"] == floor["file_in_place_ms"] + floor["commit_ms"]
    even = case["break_even_epoch_ms"]
    assert even["measured"] == case["inside_calls"]["cost_ms"] / result["targets"]["epoch_overhead"]
    assert even["floor"] == floor["kill_ms"] / result["targets"]["epoch_overhead"]
    assert even["fsync_floor"] == floor["ms"] / result["targets"]["epoch_overhead"]
    assert even["renamed_floor"] == floor["renamed_ms"] / result["targets"]["epoch_overhead"]


@pytest.mark.slow
def test_bench_cold_reports_each_piece_back_to_back_and_after_each_gap():
    done = subprocess.run([sys.executable, "bench/bench_cold.py", "--json", "--reps", "3"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["pieces"]) == {"json", "pwrite", "sqlite", "log_epoch", "log_epoch_thread"}
    for piece in result["pieces"].values():
        assert set(piece["us"]) == {"back_to_back", "after_python", "after_torch", "after_sleep"}
        assert min(piece["us"].values()) > 0
        assert piece["vs_back_to_back"] == {key: value / piece["us"]["back_to_back"]
                                            for key, value in piece["us"].items() if key != "back_to_back"}
