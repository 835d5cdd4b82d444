"""Run statuses. A run is `queued`, then `running`, then ends in exactly one final status."""

from enum import Enum


class RunStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"    # ran all epochs, or stopped early by early stopping
    STOPPED = "stopped"      # a person or program asked it to stop
    DIVERGED = "diverged"    # loss became NaN or infinite
    CRASHED = "crashed"      # the process died (detected afterwards)
    FAILED = "failed"        # an error ended it (bad data, disk full, ...)
    PRUNED = "pruned"        # a sweep's early termination ended it

    @property
    def is_final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)
