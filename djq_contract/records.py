"""The unique-task heartbeat record: its fields, and the holder it describes.

One JSON object per task in Redis (one dict in other Django caches), written
only by the lock backends in ``rsr_tasks.unique`` and read by the exporter.

Times in the record are Unix seconds (floats): UTC instants by definition,
never a naive local time. On Redis they are the server's ``TIME``, so every
host and the exporter agree on them whatever their own clocks say; readers
turn them into aware datetimes with ``datetime.fromtimestamp(t, timezone.utc)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: The current holder (present only while a run is in progress) and the last
#: completed run.
RECORD_FIELDS = {
    "token": "holder's lock token (absent when no run is in progress)",
    "host": "holder's host name",
    "pid": "holder's process id",
    "started": "run start, Unix seconds",
    "beat": "holder's last heartbeat, Unix seconds",
    "expiry": "lock expiry in seconds (= heartbeat timeout)",
    "last_end": "end of the last completed run, Unix seconds",
    "last_duration": "length of the last completed run, seconds",
    "last_outcome": "'success' or 'failure'",
    "last_success": "end of the last run that completed without error, Unix seconds",
}
#: The fields that describe the run in progress; removed when it finishes.
HOLDER_FIELDS = ("token", "host", "pid", "started", "beat")


def num(value) -> float | None:
    """A record field as a float, or None when absent or malformed."""
    if value in (None, "", b""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Holder:
    """A run that holds (or held) a lock. Times are Unix seconds on the store's clock."""

    host: str
    pid: int
    started: float | None
    beat: float | None = None

    @classmethod
    def of(cls, record: Mapping) -> Holder | None:
        """The run in progress a record names: it carries a token and a readable start."""
        started = num(record.get("started"))
        if not record.get("token") or started is None:
            return None
        return cls(str(record.get("host", "")), int(num(record.get("pid")) or 0), started,
                   num(record.get("beat")))
