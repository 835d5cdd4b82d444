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
