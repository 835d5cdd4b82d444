"""A store that cannot be opened gives every page one line of error, never a traceback, and is left as
it was: a damaged SQLite file, a PostgreSQL server that is down, a driver that is not installed."""

import os

import pytest
from streamlit.testing.v1 import AppTest

from core.storecheck import store_problem
from tests.conftest import REPO

PAGES = ["app.py", "pages/1_Train.py", "pages/2_Predict.py", "pages/4_Runs.py", "pages/5_Sweeps.py"]


@pytest.fixture
def damaged(lab_home):
    lab_home.mkdir(parents=True, exist_ok=True)
    path = lab_home / "lab.db"
    path.write_bytes(b"not a database, whatever the name says " * 200)
    return path


def closed_port() -> int:
    import socket

    with socket.socket() as sock:               # a port that was just free: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_store_problem_names_the_file_and_the_fault(damaged):
    before = damaged.read_bytes()
    problem = store_problem()
    assert problem.startswith(f"Cannot open the run store {damaged}: file is not a database")
    assert "move it aside" in problem and "\n" not in problem
    assert damaged.read_bytes() == before
    assert not any(name.startswith("lab.db-") for name in os.listdir(damaged.parent))   # no WAL/SHM made


def test_store_problem_hides_a_password_and_names_a_missing_driver(lab_home):
    url = f"postgresql+psycopg2://lab:s3cret@127.0.0.1:{closed_port()}/lab"
    problem = store_problem(url)
    assert "s3cret" not in problem and "lab:***@127.0.0.1" in problem and "Connection refused" in problem
    assert "Connection refused" in store_problem(f"postgresql://lab@127.0.0.1:{closed_port()}/lab")  # psycopg2
    problem = store_problem("postgresql+nosuchdriver://lab@127.0.0.1/lab")
    assert problem and "\n" not in problem and "s3cret" not in problem
    assert store_problem(f"sqlite:///{lab_home / 'fresh.db'}") is None


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_one_line_for_a_damaged_store(damaged, page):
    before = damaged.read_bytes()
    at = AppTest.from_file(str(REPO / page), default_timeout=60).run()
    assert not at.exception
    assert [e.value.split(":")[0] for e in at.error] == ["Cannot open the run store " + str(damaged)]
    assert damaged.read_bytes() == before


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_one_line_for_an_unreachable_server(monkeypatch, page):
    monkeypatch.setenv("LAB_STORE", f"postgresql+psycopg2://lab@127.0.0.1:{closed_port()}/lab")
    at = AppTest.from_file(str(REPO / page), default_timeout=60).run()
    assert not at.exception
    assert len(at.error) == 1 and "Connection refused" in at.error[0].value


def test_a_bare_postgresql_url_uses_the_installed_driver(postgres_server):
    from core.tracker import Store

    url = postgres_server.new_database()
    store = Store(url.replace("postgresql+psycopg2://", "postgresql://"))
    run_id = store.create_run({"lr": 0.1})
    assert Store(url).get_run(run_id).config == {"lr": 0.1}
