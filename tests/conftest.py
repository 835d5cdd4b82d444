"""Shared fixtures: a temporary LAB_HOME per test, the training workers a test started stopped after it,
and the real MNIST files when present. Also which tests a plain `python -m pytest` runs: all but
those marked `slow` (see `pytest_collection_modifyitems`)."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST_ROOT = REPO.parent / "shared" / "data"
HAS_MNIST = (MNIST_ROOT / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"real MNIST files not found under {MNIST_ROOT}")


def pytest_collection_modifyitems(config, items):
    """The default run (no paths or test ids named, no -m) leaves out the tests marked `slow`, so that
    it stays under 10 minutes on 2 cores; `python -m pytest -m slow` runs them (the README's test
    command runs both), and naming a test file or id runs what it names."""
    if config.option.markexpr or config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(autouse=True)
def lab_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "lab"
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.delenv("LAB_STORE", raising=False)
    return home


@pytest.fixture(autouse=True)
def restore_main_module():
    """AppTest runs a page as the `__main__` module and leaves it there. A process that a later test
    starts with multiprocessing's spawn runs the parent's `__main__` again first: it would run that
    page (and start a training worker) in every such process. Put the real one back after each test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def stop_started_workers():
    """Pages start a training worker when they load (a process that imports torch, then waits for
    runs), one per store, and it lives as long as the process that started it. Stop the ones a test
    started, so that they do not pile up and take the cores and memory of the tests after it."""
    yield
    if "core.worker" in sys.modules:
        sys.modules["core.worker"].stop_workers()


@pytest.fixture(scope="session")
def postgres_server():
    from tests import postgres

    if not postgres.available():
        pytest.skip("PostgreSQL binaries not installed (.ci/run installs Debian's postgresql)")
    server = postgres.PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, lab_home) -> str:
    """A fresh store URL for each backend: a SQLite file under LAB_HOME, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{lab_home / 'lab.db'}"
    return request.getfixturevalue("postgres_server").new_database()


def train_runs_into(home: Path, configs: dict, **labels) -> dict:
    """Train each named config as a real run in the lab at `home`: {name: run id}."""
    from core.runs import train_tracked
    from core.tracker import Store

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(home))
        patch.delenv("LAB_STORE", raising=False)
        store = Store()
        ids = {}
        for name, config in configs.items():
            ids[name] = store.create_run(config.to_dict(), name=name, **labels)
            list(train_tracked(config, store, ids[name]))
    return ids
