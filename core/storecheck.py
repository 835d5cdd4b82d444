"""Whether the run store can be opened, in one line: each page shows it and stops, instead of a
traceback, when the store cannot be used (a damaged `lab.db`, a database server that is down, a driver
that is not installed).

    if problem := store_problem():      # None when the configured store opens
        st.error(problem); st.stop()

Nothing is written to a store that cannot be read: a damaged file stays as it is, for the user to
inspect or move aside.
"""

from __future__ import annotations

from core.errors import first_line
from core.tracker import default_url, shared_store


def store_problem(url: str | None = None) -> str | None:
    """Why the store at `url` (default: the configured one) cannot be used, in one line; None if it can."""
    url = url or default_url()
    try:
        shared_store(url).list_runs(limit=1)
    except ModuleNotFoundError as exc:
        return (f"Cannot open the run store {_shown(url)}: its database driver {exc.name!r} is not installed "
                f"(the lab ships psycopg2: write PostgreSQL URLs as postgresql+psycopg2://...)")
    except Exception as exc:  # any file or server error means the same thing to the page
        return f"Cannot open the run store {_shown(url)}: {_first_line(exc)}. {_advice(url)}"
    return None


def _shown(url: str) -> str:
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown by its scheme only
        return url.split(":", 1)[0] + ":..."


def _advice(url: str) -> str:
    if url.startswith("sqlite:///"):
        return ("The file was left as it is: move it aside to start a new store, or point LAB_STORE or "
                "LAB_HOME at another one")
    return "Check that the database server is running and reachable, or point LAB_STORE at another store"


def _first_line(exc: Exception) -> str:
    """The driver's own message when SQLAlchemy wraps one (`orig`), as one line of at most 200 characters."""
    return first_line(getattr(exc, "orig", None) or exc, 200).rstrip(".")
