"""The Predict page through AppTest, over runs trained for real."""

from streamlit.testing.v1 import AppTest

from core import ui_keys as keys
from core.config import TrainConfig
from core.runs import train_tracked
from core.tracker import Store
from tests.conftest import REPO


def trained(**config) -> str:
    store = Store()
    cfg = TrainConfig(**config)
    run_id = store.create_run(cfg.to_dict(), name="t")
    list(train_tracked(cfg, store, run_id))
    return run_id


def predict_page(run_id: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/2_Predict.py")
    at.session_state[keys.PREDICT_RUN] = run_id
    return at.run()


def test_no_runs_says_what_to_do():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/2_Predict.py").run()
    assert not at.exception and "No run has a checkpoint" in at.info[0].value


def test_threshold_prediction_for_a_typed_number():
    run_id = trained(dataset="threshold", batch_size=1, epochs=10)
    at = predict_page(run_id)
    assert not at.exception
    assert at.metric[0].value == "> 8"                  # the default input is 24
    number = lambda: next(t for t in at.text_input if t.label == "A number")  # noqa: E731
    number().set_value("3.14").run()
    assert at.metric[0].value == "<= 8"
    number().set_value("abc").run()
    assert not at.exception and "expected a number" in at.error[0].value


def test_image_run_shows_cases_and_confusion_without_errors():
    run_id = trained(dataset="digits", epochs=3, batch_size=128)
    at = predict_page(run_id)
    assert not at.exception
    assert any("validation samples right" in c.value for c in at.caption)
    assert at.metric[0].label == "Prediction"          # the validation-sample tab predicts sample 0


def test_point_run_renders_the_boundary():
    run_id = trained(dataset="moons", epochs=3, num_samples=200)
    at = predict_page(run_id)
    assert not at.exception and len(at.slider) == 2 and at.metric[0].label == "Prediction"


def test_the_labs_own_session_state_is_plain_data():
    import pickle

    run_id = trained(dataset="threshold", batch_size=6, epochs=2)
    at = predict_page(run_id)
    own = {k: at.session_state[k] for k in vars(keys).values() if isinstance(k, str) and k in at.session_state}
    assert own == {keys.PREDICT_RUN: run_id}
    assert pickle.loads(pickle.dumps(own)) == own


def test_hostile_image_uploads_get_a_clear_outcome_and_the_page_keeps_working():
    """A decompression bomb, a zero-byte file, random bytes named .png: one-line errors; a 16-bit and a
    CMYK image: predicted. After each, the page still answers (the validation sample is predicted)."""
    from tests.hostile import hostile_uploads

    at = predict_page(trained(dataset="digits", epochs=2, batch_size=128))
    uploader = lambda: next(u for u in at.file_uploader if u.label == "An image")  # noqa: E731
    predictions = lambda: [m for m in at.metric if m.label == "Prediction"]      # noqa: E731
    for name, data, expected in hostile_uploads():
        uploader().set_value((name, data, "image/png")).run()
        assert not at.exception, name
        errors = [e.value for e in at.error]
        if expected == "confident":
            assert errors == [] and len(predictions()) == 2, name          # the upload and the sample
            assert all("confident" in m.delta for m in predictions())
        else:
            assert len(errors) == 1 and expected in errors[0] and "\n" not in errors[0], name
            assert len(predictions()) == 1, name                            # the sample still predicted


def test_a_malicious_checkpoint_uploaded_on_the_page_runs_nothing_and_registers_nothing(tmp_path):
    import io

    import torch

    from tests.hostile import Evil

    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": Evil(marker)}, buffer)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/2_Predict.py").run()
    next(u for u in at.file_uploader if u.label == "Weights file").set_value(
        ("model.pt", buffer.getvalue(), "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception and not marker.exists()
    assert len(at.error) == 1 and "refused" in at.error[0].value
    assert Store().list_runs() == []
