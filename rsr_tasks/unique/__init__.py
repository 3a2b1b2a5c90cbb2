"""Single-flight recurring tasks: ``@unique_task("name")``.

A run takes a token-owned lock with an expiry, keeps it alive with a
heartbeat while it works, and releases it only if it still owns it. A run
that finds the lock held is skipped and returns a falsy ``Skipped`` marker
(recorded by django-q as the task's result, so skipped runs are visible in
the admin and distinguishable from runs that did their work). A run that
loses the lock mid-way (cache down for longer than the expiry, key expired
or taken over) finishes its work and returns a ``LockLost`` marker carrying
the function's result; ``lock_held()`` lets a long run notice and stop early.
"""

from rsr_tasks.unique.decorator import LockLost, Skipped, lock_held, registered, unique_task

__all__ = ["LockLost", "Skipped", "lock_held", "registered", "unique_task"]
