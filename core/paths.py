"""Where the lab keeps its files: `$LAB_HOME` (default `./.lab`), its store, runs and data.

    lab_home() / "lab.db"    data_root(config)    run_folder(run_id)
"""

from __future__ import annotations

import os
from pathlib import Path


def lab_home() -> Path:
    """The lab's folder: `$LAB_HOME`, or `.lab` in the working directory."""
    return Path(os.environ.get("LAB_HOME") or ".lab").expanduser().resolve()


def default_data_root() -> Path:
    return lab_home() / "data"


def data_root(configured: str | None) -> Path:
    """The folder dataset files are read from: the configured one, else `$LAB_HOME/data`."""
    return Path(configured).expanduser().resolve() if configured else default_data_root()
