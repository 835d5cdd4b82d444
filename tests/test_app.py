"""Page tests with Streamlit's AppTest (no browser)."""

from streamlit.testing.v1 import AppTest

from core.config import TrainConfig
from core.runs import train_tracked
from core.tracker import Store
from tests.conftest import REPO


def test_home_page_renders_empty_then_lists_runs():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("No runs yet" in info.value for info in at.info)
    store = Store()
    config = TrainConfig(dataset="threshold", epochs=2, batch_size=6)
    run_id = store.create_run(config.to_dict(), name="toy")
    list(train_tracked(config, store, run_id))
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["run"].tolist() == [run_id] and table["status"].tolist() == ["finished"]
