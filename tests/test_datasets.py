import numpy as np
import pytest
import torch

from core.config import TrainConfig
from core.datafiles import read_idx
from core.datasets import THRESHOLD_TRAIN, THRESHOLD_VALID, load_dataset
from core.errors import DataError
from core.registry import DATASET_NAMES
from tests.conftest import MNIST_ROOT, needs_mnist


def test_threshold_is_the_templates_toy():
    data = load_dataset(TrainConfig(dataset="threshold"))
    assert data.num_train == 18 and data.val_y.shape == (6,)
    raw_train = data.train_x[:, 0] * data.info.std[0] + data.info.mean[0]
    assert raw_train.tolist() == pytest.approx(list(THRESHOLD_TRAIN), abs=1e-5)
    raw_val = data.val_x[:, 0] * data.info.std[0] + data.info.mean[0]
    assert raw_val.tolist() == pytest.approx(list(THRESHOLD_VALID), abs=1e-5)
    assert data.train_y.tolist() == [int(v > 8) for v in THRESHOLD_TRAIN]
    assert data.info.class_names == ("<= 8", "> 8")


def test_digits_shapes_split_and_normalisation():
    data = load_dataset(TrainConfig(dataset="digits"))
    assert data.info.input_shape == (1, 8, 8) and data.info.num_classes == 10
    assert data.num_train + data.val_y.shape[0] == 1797
    assert data.val_y.shape[0] == round(1797 * 0.2)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert abs(float(data.train_x.mean())) < 1e-4 and float(data.train_x.std()) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("name", ["moons", "circles", "spiral", "xor"])
def test_point_sets_have_options_and_two_balanced_classes(name):
    data = load_dataset(TrainConfig(dataset=name, num_samples=400, noise=0.1, val_fraction=0.25))
    assert data.train_x.shape == (300, 2) and data.val_x.shape == (100, 2)
    counts = torch.bincount(torch.cat([data.train_y, data.val_y]))
    assert counts.tolist() == [200, 200]


def test_same_seed_same_split_other_seed_other_split():
    a = load_dataset(TrainConfig(dataset="moons", seed=1))
    b = load_dataset(TrainConfig(dataset="moons", seed=1))
    c = load_dataset(TrainConfig(dataset="moons", seed=2))
    assert torch.equal(a.train_x, b.train_x)
    assert not torch.equal(a.train_x, c.train_x)


@needs_mnist
def test_mnist_from_the_t10k_files_only():
    data = load_dataset(TrainConfig(dataset="mnist", data_root=str(MNIST_ROOT)))
    assert data.train_x.shape == (8000, 1, 28, 28) and data.val_x.shape == (2000, 1, 28, 28)
    assert sorted(torch.unique(data.train_y).tolist()) == list(range(10))
    assert data.info.image_style == "mnist"
    assert {name for name, _ in data.info.files} == {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    raw = data.train_x * data.info.std[0] + data.info.mean[0]
    assert float(raw.min()) == pytest.approx(0, abs=1e-5) and float(raw.max()) == pytest.approx(1, abs=1e-5)


@needs_mnist
def test_idx_reader_matches_the_published_first_labels():
    labels = read_idx(MNIST_ROOT / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_idx_reader_rejects_truncated_file(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(10))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_missing_files_name_the_folder_to_fill(tmp_path):
    for name, folder in [("mnist", "MNIST/raw"), ("fashion-mnist", "FashionMNIST/raw")]:
        with pytest.raises(DataError, match=folder):
            load_dataset(TrainConfig(dataset=name, data_root=str(tmp_path)))
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_dataset(TrainConfig(dataset="cifar10", data_root=str(tmp_path)))


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, colour in [("cats", 40), ("dogs", 200)]:
        (tmp_path / cls).mkdir()
        for i in range(5):
            pixels = np.clip(rng.normal(colour, 10, (20, 30, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    data = load_dataset(TrainConfig(dataset="image-folder", data_root=str(tmp_path), image_size=16))
    assert data.info.class_names == ("cats", "dogs")
    assert data.train_x.shape[1:] == (3, 16, 16) and data.num_train + data.val_y.shape[0] == 10


def test_degenerate_datasets_are_refused(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match="at least 2 class"):
        load_dataset(TrainConfig(dataset="image-folder", data_root=str(tmp_path)))
    with pytest.raises(DataError, match="needs --data-root"):
        load_dataset(TrainConfig(dataset="image-folder"))


def test_single_class_and_out_of_range_labels_are_refused():
    from core.datasets import DatasetInfo, finish_split

    info = DatasetInfo("toy", "point", ("a", "b"), (2,), (), ())
    x = torch.randn(10, 2)
    with pytest.raises(DataError, match="single class"):
        finish_split(x, torch.zeros(10, dtype=torch.long), info, TrainConfig())
    with pytest.raises(DataError, match="labels must lie in 0..1"):
        finish_split(x, torch.arange(10) % 3, info, TrainConfig())


def test_registry_names_match_loaders():
    from core.datasets import LOADERS
    from core.models import BUILDERS
    from core.registry import MODEL_NAMES

    assert tuple(LOADERS) == DATASET_NAMES and tuple(BUILDERS) == MODEL_NAMES
