"""A private PostgreSQL server for the tests: Debian's binaries, a temporary data folder, 127.0.0.1 only.

`.ci/run` installs the `postgresql` package; this module starts a server on a free port for the test
session and stops it at the end. Without the binaries, the PostgreSQL variants of the tests skip.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

BIN_DIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
PG_BIN = BIN_DIRS[-1] if BIN_DIRS else None


def available() -> bool:
    return PG_BIN is not None and os.path.exists(os.path.join(PG_BIN, "initdb"))


def _as_postgres(args: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the 'postgres' user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="lab-pg-")
        self.data = os.path.join(self.folder, "data")
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")

    def start(self) -> "PostgresServer":
        subprocess.run(_as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres"]),
                       check=True, capture_output=True)
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-o", options, "-w", "-l",
                                     os.path.join(self.folder, "log"), "start"]), check=True, capture_output=True)
        return self

    def stop(self) -> None:
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        from sqlalchemy import create_engine, text

        name = "lab_" + uuid.uuid4().hex[:12]
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        for _ in range(50):
            try:
                with engine.connect() as conn:
                    conn.execute(text(f"CREATE DATABASE {name}"))
                break
            except Exception:
                time.sleep(0.1)
        engine.dispose()
        return self.url(name)
