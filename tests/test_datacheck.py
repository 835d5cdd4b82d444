"""Data mistakes told before torch loads: the same messages as the loaders', without importing torch."""

import subprocess
import sys

import pytest

from core.config import TrainConfig
from core.datacheck import NON_IMAGE_KINDS, early_data_problem
from core.datasets import load_dataset
from core.errors import DataError
from core.models import build_model
from tests.conftest import REPO


@pytest.mark.parametrize("dataset", sorted(NON_IMAGE_KINDS))
def test_non_image_kinds_match_the_loaders_and_the_cnn_builders_message(dataset):
    config = TrainConfig(dataset=dataset, model="cnn", num_samples=100)
    data = load_dataset(config)
    assert data.info.kind == NON_IMAGE_KINDS[dataset]
    with pytest.raises(DataError) as built:
        build_model(config, data.info)
    assert early_data_problem(config) == str(built.value)


def test_missing_idx_files_give_the_loaders_message(tmp_path):
    config = TrainConfig(dataset="fashion-mnist", data_root=str(tmp_path))
    with pytest.raises(DataError) as loaded:
        load_dataset(config)
    assert early_data_problem(config) == str(loaded.value)
    assert "FashionMNIST/raw" in str(loaded.value)


def test_present_files_images_and_download_are_no_early_problem(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"")                         # present; their contents are the loader's job
    assert early_data_problem(TrainConfig(dataset="mnist", data_root=str(tmp_path))) is None
    assert early_data_problem(TrainConfig(dataset="mnist", data_root=str(tmp_path / "x"), download=True)) is None
    assert early_data_problem(TrainConfig(dataset="digits", model="cnn")) is None


@pytest.mark.parametrize("args, fragment", [
    (["--dataset", "moons", "--model", "cnn"], "needs an image dataset; 'moons' holds points"),
    (["--dataset", "mnist", "--data-root", "{tmp}"], "mnist files not found"),
])
def test_the_cli_refuses_them_before_importing_torch(args, fragment, tmp_path, lab_home):
    argv = ["train"] + [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = ("import sys; from core.cli import main; rc = main(sys.argv[1:]); "
            "print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and fragment in done.stderr and done.stdout.strip() == "no torch", done


def test_resuming_a_run_whose_files_are_gone_leaves_it_crashed(tmp_path, lab_home):
    import torch

    from core.datasets import DatasetInfo
    from core.resume import has_last, save_last
    from core.status import RunStatus
    from core.tracker import Store

    data_root = tmp_path / "data"
    (data_root / "MNIST" / "raw").mkdir(parents=True)
    config = TrainConfig(dataset="mnist", model="logreg", data_root=str(data_root))
    info = DatasetInfo("mnist", "image", tuple(map(str, range(10))), (1, 28, 28), (0.1,), (0.3,), "mnist")
    store = Store()
    run_id = store.create_run(config.to_dict(), status=RunStatus.CRASHED)
    model = build_model(config, info)
    save_last(store.run_folder(run_id), model, torch.optim.Adam(model.parameters()), torch.Generator(),
              {"config": config.to_dict(), "dataset": info.to_dict(), "epoch": 1, "step": 10})
    assert has_last(store.run_folder(run_id))                  # resumable, but its files are gone
    done = subprocess.run([sys.executable, "-m", "core", "resume", run_id], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "mnist files not found" in done.stderr, done.stderr
    assert store.get_run(run_id).status is RunStatus.CRASHED
