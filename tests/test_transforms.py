"""core.transforms against torchvision as the oracle, plus the Transforms page through AppTest."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest
from torchvision import transforms as T

from core import transforms as tf
from core.transformimages import load_sample_photo
from tests.conftest import REPO

PAGE = str(REPO / "pages" / "3_Transforms.py")
S = tf.new_step


@pytest.fixture(scope="module")
def photo():
    return load_sample_photo()


# Each case: our plain-data pipeline and the same pipeline written directly with torchvision.
CASES = {
    "pil-crops-jitter-erase": (
        [S("RandomResizedCrop", size=[60, 80]), S("RandomHorizontalFlip"), S("ColorJitter"), S("ToTensor"),
         S("RandomErasing", p=1.0)],
        lambda: [T.RandomResizedCrop((60, 80)), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4, 0.1),
                 T.ToTensor(), T.RandomErasing(p=1.0)]),
    "rotate-crop-blur-pil-out": (
        [S("RandomRotation", degrees=45.0, expand=True), S("RandomCrop", size=100, padding=4),
         S("GaussianBlur", kernel_size=7, sigma=[0.5, 3.0])],
        lambda: [T.RandomRotation(45, expand=True), T.RandomCrop(100, padding=4), T.GaussianBlur(7, (0.5, 3.0))]),
    "gray-normalize-erase": (
        [S("Grayscale", num_output_channels=3), S("ToTensor"), S("RandomVerticalFlip"), S("Normalize"),
         S("RandomErasing", p=0.7, scale=[0.1, 0.4])],
        lambda: [T.Grayscale(3), T.ToTensor(), T.RandomVerticalFlip(),
                 T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), T.RandomErasing(0.7, (0.1, 0.4))]),
    "tensor-ops-then-pil": (
        [S("ToTensor"), S("RandomResizedCrop", size=32, scale=[0.2, 0.9]), S("ColorJitter", hue=0.3),
         S("ToPILImage"), S("RandomRotation", degrees=10.0, interpolation="bilinear")],
        lambda: [T.ToTensor(), T.RandomResizedCrop(32, scale=(0.2, 0.9)), T.ColorJitter(0.4, 0.4, 0.4, 0.3),
                 T.ToPILImage(), T.RandomRotation(10, interpolation=T.InterpolationMode.BILINEAR)]),
    "resize-shorter-side-then-centercrop": (
        [S("Resize", size=100), S("CenterCrop", size=80), S("ToTensor")],
        lambda: [T.Resize(100), T.CenterCrop(80), T.ToTensor()]),
    "resize-hw-nearest-then-centercrop-that-pads": (          # the crop is larger than the image: zeros
        [S("Resize", size=[50, 70], interpolation="nearest"), S("CenterCrop", size=[64, 90])],
        lambda: [T.Resize((50, 70), interpolation=T.InterpolationMode.NEAREST), T.CenterCrop((64, 90))]),
    "tensor-resize-bicubic-without-antialias-then-centercrop": (
        [S("ToTensor"), S("Resize", size=[33, 47], interpolation="bicubic", antialias=False),
         S("CenterCrop", size=[31, 20]), S("Normalize")],
        lambda: [T.ToTensor(), T.Resize((33, 47), interpolation=T.InterpolationMode.BICUBIC, antialias=False),
                 T.CenterCrop((31, 20)), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]),
}


def same_image(a, b) -> bool:
    if isinstance(a, Image.Image):
        return isinstance(b, Image.Image) and (a.mode, a.size, a.tobytes()) == (b.mode, b.size, b.tobytes())
    return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("seed", [0, 1, 12345])
@pytest.mark.parametrize("case", CASES)
def test_seeded_run_is_exactly_torchvision_compose(photo, case, seed):
    steps, reference = CASES[case]
    torch.manual_seed(seed)
    expected = T.Compose(reference())(photo)
    assert same_image(tf.run_pipeline(photo, steps, seed).stages[-1].output, expected)


def test_other_seeds_give_other_outputs_and_the_global_rng_is_untouched(photo):
    steps = CASES["pil-crops-jitter-erase"][0]
    outputs = [tf.run_pipeline(photo, steps, seed).stages[-1].output for seed in (0, 1, 2)]
    assert not torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[1], outputs[2])
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    tf.run_pipeline(photo, steps, 5)
    assert torch.equal(torch.rand(3), expected)


def test_every_registered_step_builds_its_torchvision_class():
    for name in tf.STEP_SPECS:
        assert type(tf.build_transform(S(name))) is getattr(T, name)
    assert {"ToTensor", "Normalize", "Resize", "CenterCrop", "RandomCrop", "RandomResizedCrop", "RandomHorizontalFlip",
            "RandomRotation", "ColorJitter", "Grayscale", "GaussianBlur", "RandomErasing"} <= set(tf.STEP_SPECS)
    assert S("Normalize")["params"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def test_pipelines_are_plain_json_data():
    steps = tf.default_pipeline()
    assert json.loads(json.dumps(steps)) == steps == tf.validate_pipeline(steps)


@pytest.mark.parametrize("case", ["pil-crops-jitter-erase", "rotate-crop-blur-pil-out", "tensor-ops-then-pil",
                                  "resize-hw-nearest-then-centercrop-that-pads"])
def test_generated_code_builds_a_pipeline_with_identical_output(photo, case):
    steps = CASES[case][0]
    code = tf.render_code(steps, seed=7)
    assert "transforms.Compose([" in code and "torch.manual_seed(7)" in code
    namespace = {"image": photo}
    exec(code, namespace)  # noqa: S102 - our own generated source
    assert same_image(namespace["output"], tf.run_pipeline(photo, steps, 7).stages[-1].output)


def test_stats_table_on_a_known_image():
    image = Image.fromarray(np.array([[0, 51, 102], [153, 204, 255]], dtype=np.uint8), "L")
    stats = tf.run_pipeline(image, [S("ToTensor")], 0).stats
    assert stats["step"].tolist() == ["original", "ToTensor"]
    assert stats["shape"].tolist() == ["(w, h) = (3, 2)", "(C, H, W) = (1, 2, 3)"]
    assert stats["dtype"].tolist() == ["uint8", "float32"]
    assert stats["min"].tolist() == [0, 0] and stats["max"].tolist() == [255, 1]
    assert stats["mean"].tolist() == pytest.approx([127.5, 0.5])
    assert stats["std"].tolist() == pytest.approx([51 * math.sqrt(3.5), math.sqrt(3.5) / 5])  # unbiased


@pytest.mark.parametrize("steps, expected", [
    ([{"name": "Blur"}], "unknown transform step 'Blur'; choose one of: ToTensor, Normalize, ToPILImage, Resize"),
    ([S("ToTensor"), {"name": "Resize", "params": {"size": 0}}],
     "step 2 Resize: size=0 is not allowed; use an integer 1..2048 or a pair (height, width) of them"),
    ([{"name": "Resize", "params": {"size": [64, 48, 3]}}], "size=[64, 48, 3] is not allowed"),
    ([{"name": "GaussianBlur", "params": {"kernel_size": 4}}], "kernel_size=4 is not allowed; use an odd integer"),
    ([{"name": "RandomResizedCrop", "params": {"scale": [0.9, 0.2]}}], "scale=[0.9, 0.2] is not allowed; use a pair"),
    ([{"name": "Grayscale", "params": {"num_output_channels": True}}], "use one of: 1, 3"),
    ([{"name": "ColorJitter", "params": {"hue": 0.7}}], "ColorJitter: hue=0.7 is not allowed; use a number 0.0..0.5"),
    ([{"name": "Resize", "params": {"sise": 3}}], "unknown parameter 'sise'; valid parameters: size, interpolation"),
    ([S("Normalize")], "step 1 Normalize needs a tensor but gets a PIL image; add ToTensor before it"),
    ([S("RandomErasing")], "step 1 RandomErasing needs a tensor but gets a PIL image; add ToTensor before it"),
    ([S("ToTensor"), S("ToTensor")], "step 2 ToTensor needs a PIL image but gets a tensor"),
    ("Resize", "a pipeline is a list of steps"),
])
def test_validation_errors_are_one_line_and_name_what_is_wrong(photo, steps, expected):
    with pytest.raises(tf.TransformError) as caught:
        tf.run_pipeline(photo, steps, 0)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_runtime_failures_become_one_line_advice(photo):
    with pytest.raises(tf.TransformError, match=r"step 1 RandomCrop failed .* turn on pad_if_needed$"):
        tf.run_pipeline(photo, [S("RandomCrop", size=500)], 0)
    gray = photo.convert("L")
    with pytest.raises(tf.TransformError, match=r"step 2 Normalize failed .*one mean and std per channel"):
        tf.run_pipeline(gray, [S("ToTensor"), S("Normalize")], 0)
    padded = tf.run_pipeline(photo, [S("RandomCrop", size=500, pad_if_needed=True)], 0).stages[-1].output
    assert padded.size == (500, 500)


def test_size_order_note_matches_what_pil_reports(photo):
    step = S("Resize", size=[64, 48])
    note = tf.size_order_note(step)
    assert "(height, width)" in note and "(w, h) = (48, 64)" in note and "ends in (64, 48)" in note
    output = tf.run_pipeline(photo, [step], 0).stages[-1].output
    assert output.size == (48, 64)
    assert "shorter side to 64" in tf.size_order_note(S("Resize", size=64))
    assert tf.size_order_note(S("CenterCrop", size=[32, 32])) == ""
    assert tf.size_order_note(S("RandomRotation")) == ""
    assert tf.image_size_note(photo) == ("PIL's .size is (w, h) = (320, 240); "
                                         "ToTensor makes it (C, H, W) = (3, 240, 320).")


def test_parse_and_format_typed_parameters():
    size, mean = tf.STEP_SPECS["Resize"].params[0], tf.STEP_SPECS["Normalize"].params[0]
    assert tf.parse_param("Resize", size, "64, 48") == [64, 48]
    assert tf.parse_param("Resize", size, " 64 ") == 64
    assert tf.parse_param("Normalize", mean, "0.5") == [0.5]
    assert tf.format_param([64, 48]) == "64, 48" and tf.format_param([0.485]) == "0.485"
    with pytest.raises(tf.TransformError, match=r"^Resize: size='64 x' is not allowed; use an integer"):
        tf.parse_param("Resize", size, "64 x")
    with pytest.raises(tf.TransformError, match="1 or 3 numbers"):
        tf.parse_param("Normalize", mean, "0.1, 0.2")


def test_move_step_keeps_every_step_once():
    steps = [S("Resize"), S("ToTensor"), S("Normalize")]
    assert [s["name"] for s in tf.move_step(steps, 2, -1)] == ["Resize", "Normalize", "ToTensor"]
    assert [s["name"] for s in tf.move_step(steps, 0, -1)] == ["Resize", "ToTensor", "Normalize"]
    assert [s["name"] for s in steps] == ["Resize", "ToTensor", "Normalize"]


# -- the page --------------------------------------------------------------------------------------

def test_page_renders_stats_and_code_and_adds_a_step():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == 1 + len(tf.default_pipeline())
    assert "transforms.Compose([" in at.code[0].value
    at.selectbox(key="transforms_add_name").set_value("GaussianBlur")
    at.button(key="transforms_add").click().run()
    assert not at.exception and len(at.dataframe[0].value) == 2 + len(tf.default_pipeline())
    assert "transforms.GaussianBlur(kernel_size=5, sigma=(0.1, 2.0))" in at.code[0].value
    json.dumps(at.session_state["transforms_pipeline"])                 # plain data only
    at.button(key="transforms_reroll").click().run()
    assert "torch.manual_seed(0)" not in at.code[0].value


def test_page_shows_a_one_line_error_and_recovers():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="transforms_source").set_value("Dataset sample").run()  # 1 channel vs ImageNet's 3
    assert not at.exception
    assert [e.value for e in at.error] and "0.5 preset" in at.error[0].value
    preset = [b for b in at.button if b.label.startswith("0.5")][0]
    preset.click().run()
    assert not at.exception and not at.error and len(at.dataframe) == 1


@pytest.mark.parametrize("demo, offered", [("0", ["digits", "mnist"]), ("1", ["digits"])])
def test_page_offers_only_the_demo_datasets_in_demo_mode(monkeypatch, demo, offered):
    monkeypatch.setenv("LAB_DEMO", demo)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="transforms_source").set_value("Dataset sample").run()
    assert not at.exception
    assert at.selectbox(key="transforms_dataset").options == offered


def test_page_keeps_the_old_value_and_says_so_when_typed_text_is_bad():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="transforms_0_0_size").input("64 x").run()
    assert not at.exception
    assert "RandomResizedCrop: size='64 x' is not allowed" in at.error[0].value
    assert "still using 96, 128" in at.error[0].value
    assert at.dataframe[0].value["shape"].tolist()[1] == "(w, h) = (128, 96)"
    at.text_input(key="transforms_0_0_size").input("64, 48").run()
    assert not at.error and at.dataframe[0].value["shape"].tolist()[1] == "(w, h) = (48, 64)"


def test_page_refuses_hostile_uploads_in_one_line_and_shows_valid_odd_ones():
    from tests.hostile import hostile_uploads

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="transforms_source").set_value("Upload").run()
    for name, data, expected in hostile_uploads():
        at.file_uploader(key="transforms_upload").set_value((name, data, "image/png")).run()
        assert not at.exception, name
        errors = [e.value for e in at.error]
        if expected == "confident":                  # valid 16-bit and CMYK images are read and run
            assert any(c.value.startswith("The uploaded image.") for c in at.caption), name
            if name == "deep.png":                   # one channel: ImageNet's Normalize says what to do
                assert len(errors) == 1 and "0.5 preset" in errors[0] and not at.dataframe
            else:
                assert errors == [] and len(at.dataframe) == 1, name
        else:
            assert len(errors) == 1 and expected in errors[0] and "\n" not in errors[0], name
            assert not at.dataframe, name
