"""What the task side writes and the exporter reads: key layout, record fields, counters.

Stdlib only and free of Django, so the exporter can import it without
importing any task code. Change it only together with both sides.

Keys (all under ``django_q_exporter:{Q_CLUSTER name}:unique``):

* ``…:registry`` – every unique task name with its expiry (a Redis hash of
  JSON strings, or one dict in the Django cache);
* ``…:{task}:lock`` – the lock: the holder's random token, with the expiry;
* ``…:{task}:state`` – the heartbeat record, one JSON object (one dict in the
  Django cache) with the ``RECORD_FIELDS`` below.

Times in the record are Unix seconds (floats): UTC instants by definition,
never a naive local time. On Redis they are the server's ``TIME``, so every
host and the exporter agree on them whatever their own clocks say; readers
turn them into aware datetimes with ``datetime.fromtimestamp(t, timezone.utc)``.
"""

from __future__ import annotations

#: The heartbeat record: the current holder (present only while a run is in
#: progress) and the last completed run.
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

#: Per-pod counters (exporter.podstore), declared as counters named without
#: ``_total``; samples carry the suffix "_total" and the label ``task``.
COUNTERS = {
    "acquired": "Unique-task runs that took the lock",
    "contended": "Unique-task runs skipped because another holder had the lock",
    "lost": "Unique-task runs that lost the lock mid-run (expired or taken over)",
    "errors": "Unique-task lock backend errors",
}
#: The cardinality budget of the ``task`` label (PodStore.admit family key).
ADMIT_FAMILY = "django_q_unique_task"
DEFAULT_TASK_CAP = 500


def counter_family(outcome: str) -> str:
    return f"django_q_unique_task_lock_{outcome}"


def prefix(cluster_name: str) -> str:
    return f"django_q_exporter:{cluster_name}:unique"


def registry_key(prefix_: str) -> str:
    return f"{prefix_}:registry"


def lock_key(prefix_: str, task: str) -> str:
    return f"{prefix_}:{task}:lock"


def state_key(prefix_: str, task: str) -> str:
    return f"{prefix_}:{task}:state"
