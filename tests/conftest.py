"""Shared fixtures: a temporary LAB_HOME per test, and the real MNIST files when present."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST_ROOT = REPO.parent / "shared" / "data"
HAS_MNIST = (MNIST_ROOT / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"real MNIST files not found under {MNIST_ROOT}")


@pytest.fixture(autouse=True)
def lab_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "lab"
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.delenv("LAB_STORE", raising=False)
    return home


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
