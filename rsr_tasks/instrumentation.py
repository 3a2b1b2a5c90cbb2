"""django-q2 signal receivers that record task executions in the pod store.

Filled in by the task-metrics work; kept as a module with ``connect()`` so
the app config has one stable hook.
"""


def connect() -> None:
    """Connect the signal receivers (idempotent)."""
