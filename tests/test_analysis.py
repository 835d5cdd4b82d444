import numpy as np
import pandas as pd
import pytest

from core.analysis import (canvas_to_image, case_captions, confusion_matrix, decision_grid, pick_cases,
                           probability_curve, sample_images, top_probabilities, validation_cases, validation_data)
from core.config import TrainConfig
from core.predict import Predictor
from core.training import train


@pytest.fixture(scope="module")
def digits_predictor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    list(train(TrainConfig(dataset="digits", epochs=4, batch_size=64), checkpoint_dir=folder))
    return Predictor.from_folder(folder)


def test_cases_and_confusion_matrix_agree(digits_predictor):
    data = validation_data(digits_predictor)
    cases = validation_cases(digits_predictor, data)
    assert len(cases) == data.val_y.shape[0]
    matrix = confusion_matrix(cases, digits_predictor.info.class_names)
    assert matrix.shape == (10, 10) and matrix.values.sum() == len(cases)
    assert np.trace(matrix.values) == cases["correct"].sum()
    wrong = pick_cases(cases, False, limit=50)
    assert len(wrong) == min(50, (~cases["correct"]).sum()) and not wrong["correct"].any()
    assert wrong["confidence"].is_monotonic_decreasing
    one = pick_cases(cases, True, label="3")
    assert set(one["label"]) <= {"3"} and set(one["prediction"]) <= {"3"}


def test_sample_images_round_back_to_the_original_pixels(digits_predictor):
    data = validation_data(digits_predictor)
    image = sample_images(data, [0])[0]
    expected = np.clip((data.val_x[0, 0].numpy() * data.info.std[0] + data.info.mean[0]) * 255 + 0.5, 0, 255)
    assert image.dtype == np.uint8 and image.shape == (8, 8)
    assert np.array_equal(image, expected.astype(np.uint8))


def test_probability_curve_and_decision_grid(tmp_path):
    list(train(TrainConfig(dataset="threshold", batch_size=1, epochs=10), checkpoint_dir=tmp_path / "t"))
    curve = probability_curve(Predictor.from_folder(tmp_path / "t"), -10, 30, num=41)
    assert curve["x"].iloc[0] == -10 and curve["x"].iloc[-1] == 30
    assert (curve["<= 8"] + curve["> 8"]).to_numpy() == pytest.approx(np.ones(41), abs=1e-6)
    assert curve["> 8"].iloc[-1] > 0.5 > curve["> 8"].iloc[0]
    list(train(TrainConfig(dataset="moons", epochs=5), checkpoint_dir=tmp_path / "m"))
    predictor = Predictor.from_folder(tmp_path / "m")
    xs, ys, grid = decision_grid(predictor, validation_data(predictor), resolution=20)
    assert grid.shape == (20, 20) and ((grid >= 0) & (grid <= 1)).all()


def test_canvas_strokes_become_dark_ink_on_white():
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)           # transparent background
    rgba[2:8, 4:6] = [0, 0, 0, 255]                        # an opaque black stroke
    image = np.asarray(canvas_to_image(rgba))
    assert image[0, 0] == 255 and image[4, 4] == 0
    with pytest.raises(ValueError, match="RGBA"):
        canvas_to_image(np.zeros((4, 4, 3)))


def test_top_probabilities_keep_the_k_most_probable_classes_in_order():
    top = top_probabilities((0.1, 0.5, 0.05, 0.35), ["a", "b", "c", "d"], k=3)
    assert top.index.tolist() == ["b", "d", "a"] and top["probability"].tolist() == [0.5, 0.35, 0.1]
    assert len(top_probabilities((0.4, 0.6), ["no", "yes"])) == 2          # k larger than the classes


def test_case_captions_read_label_arrow_prediction_and_confidence():
    cases = pd.DataFrame({"index": [4, 9], "label": ["3", "7"], "prediction": ["8", "7"],
                          "confidence": [0.966, 0.5], "correct": [False, True]})
    assert case_captions(cases) == ["3→8 97%", "7→7 50%"]
    assert case_captions(cases.iloc[:0]) == []
