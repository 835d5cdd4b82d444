"""The run store, the only place that writes SQL. See `core.tracker.store` and `core.tracker.files`.

    from core.tracker import Store, shared_store
"""

from core.tracker.files import ArtifactRecord
from core.tracker.schema import SchemaError
from core.tracker.store import (RunRecord, Store, check_run_id, default_url, new_run_id, shared_store)

__all__ = ["ArtifactRecord", "RunRecord", "SchemaError", "Store", "check_run_id", "default_url", "new_run_id",
           "shared_store"]
