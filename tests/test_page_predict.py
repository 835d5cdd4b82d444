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
