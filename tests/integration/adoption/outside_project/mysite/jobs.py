"""Recurring jobs that used to be cron jobs: each must never run twice at once."""

import time

from rsr_tasks.unique import lock_held, unique_task


@unique_task("refresh-index", expiry=30)
def refresh_index() -> str:
    time.sleep(0.2)
    return "refreshed"


@unique_task("long-report", expiry=15, beat=3)
def long_report(seconds: float = 75.0) -> str:
    """Outlives its one-minute schedule: the next scheduled run finds the lock held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not lock_held():
            return "stopped: lock lost"
        time.sleep(0.5)
    return "reported"
