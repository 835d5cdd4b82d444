import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.config import TrainConfig
from core.datasets import DatasetInfo, load_dataset
from core.errors import InputError
from core.predict import Predictor, checkpoint_runs, open_image, parse_cli_input
from core.preprocess import centre_digit, centre_of_mass, prepare_input
from core.training import train
from tests.conftest import MNIST_ROOT, needs_mnist

MNIST_INFO = DatasetInfo("mnist", "image", tuple(map(str, range(10))), (1, 28, 28), (0.0,), (1.0,), "mnist")


def drawn_digit(size=(200, 140)) -> Image.Image:
    """A dark '1'-like stroke on white paper, off-centre, like a canvas drawing."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).line([(30, 20), (40, 120)], fill="black", width=12)
    return image


def test_drawn_digit_is_inverted_fitted_and_centred_like_mnist():
    x = prepare_input(MNIST_INFO, drawn_digit())[0, 0].numpy()
    assert x.shape == (28, 28)
    assert x[0].max() == 0 and x[:, 0].max() == 0           # background is dark
    rows = np.nonzero(x.max(axis=1) > 0.1)[0]
    assert rows.max() - rows.min() + 1 in (19, 20, 21)      # tallest side fitted into a 20 px box
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


def test_blank_canvas_stays_blank_and_modes_are_accepted():
    assert centre_digit(np.ones((50, 50), dtype=np.float32), (28, 28), 20).max() == 0
    for mode in ("L", "RGBA", "P", "I;16", "CMYK"):
        image = drawn_digit().convert(mode)
        assert prepare_input(MNIST_INFO, image).shape == (1, 1, 28, 28)


def test_natural_images_are_resized_with_channels():
    info = DatasetInfo("cifar10", "image", tuple("abcdefghij"), (3, 32, 32), (0.5, 0.5, 0.5), (0.25,) * 3, "natural")
    x = prepare_input(info, Image.new("L", (7, 300), 255))
    assert x.shape == (1, 3, 32, 32) and torch.allclose(x, torch.full_like(x, 2.0))


def test_bad_inputs_are_input_errors(tmp_path):
    scalar = DatasetInfo("threshold", "scalar", ("<= 8", "> 8"), (1,), (0.0,), (1.0,))
    point = DatasetInfo("moons", "point", ("a", "b"), (2,), (0.0, 0.0), (1.0, 1.0))
    for info, raw in [(scalar, "abc"), (scalar, "nan"), (point, (1,)), (point, ("x", "1")), (MNIST_INFO, 3)]:
        with pytest.raises(InputError):
            prepare_input(info, raw)
    (tmp_path / "fake.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="cannot read"):
        open_image(tmp_path / "fake.png")
    with pytest.raises(InputError, match="x,y"):
        parse_cli_input("1;2", point)


def test_point_predictions_from_a_trained_run(tmp_path):
    list(train(TrainConfig(dataset="xor", noise=0.0, hidden=(16, 16), epochs=40, lr=0.01), checkpoint_dir=tmp_path))
    predictor = Predictor.from_folder(tmp_path)
    same = predictor.predict((0.7, 0.7))
    diff = predictor.predict(parse_cli_input("-0.7,0.7", predictor.info))
    assert same.class_index == 1 and diff.class_index == 0
    assert sum(same.probabilities) == pytest.approx(1.0)


@needs_mnist
@pytest.mark.slow
def test_mnist_model_reads_a_real_sample_saved_as_png(tmp_path):
    config = TrainConfig(dataset="mnist", data_root=str(MNIST_ROOT), model="mlp", hidden=(128,), epochs=3,
                         batch_size=128)
    list(train(config, checkpoint_dir=tmp_path / "run"))
    predictor = Predictor.from_folder(tmp_path / "run")
    data = load_dataset(config)
    hits = 0
    for i in range(20):                               # validation digits, as a user would upload them
        raw = data.val_x[i, 0] * data.info.std[0] + data.info.mean[0]
        path = tmp_path / f"{i}.png"
        Image.fromarray((raw.numpy() * 255).round().astype(np.uint8)).save(path)
        hits += predictor.predict(open_image(path)).class_index == int(data.val_y[i])
    assert hits >= 16


def test_checkpoint_runs_lists_runs_that_can_predict_newest_first_with_labels():
    from core.status import RunStatus
    from core.tracker import Store

    store = Store()
    older = store.create_run({"dataset": "moons", "model": "mlp"}, name="old")
    store.create_run({"dataset": "digits", "model": "cnn"}, name="no checkpoint")
    newer = store.create_run({"dataset": "digits", "model": "cnn"}, name="new")
    for run_id in (older, newer):
        store.finish_run(run_id, RunStatus.FINISHED, "done", summary={"checkpoint": "/somewhere/best.safetensors"})
    assert checkpoint_runs(store) == {newer: f"{newer} · new · digits/cnn", older: f"{older} · old · moons/mlp"}
    assert list(checkpoint_runs(store, limit=1)) == [newer]
