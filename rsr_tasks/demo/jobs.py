"""Recurring demo jobs: what used to be cron jobs in RSR, each a @unique_task.

A skipped run (another worker holds the lock) returns a ``Skipped`` marker that
django-q stores as the result; ``slow_report`` shows a long run checking
``lock_held()`` between steps so it stops once its lock is gone.
"""

import logging
import time

from rsr_tasks.unique import lock_held, unique_task

log = logging.getLogger("rsr_tasks.demo")


@unique_task("refresh-cache", expiry=30)
def refresh_cache() -> str:
    time.sleep(0.5)
    return "refreshed"


@unique_task("send-digest", expiry=30)
def send_digest() -> str:
    time.sleep(2)
    return "sent"


@unique_task("slow-report", expiry=15, beat=3)
def slow_report() -> str:
    for step in range(150):  # outlives its 2-minute schedule: the next run is skipped
        if not lock_held():  # Redis gone for longer than the expiry, or taken over
            log.warning("slow-report: lock lost at step %d, stopping", step)
            return f"stopped at step {step}: lock lost"
        time.sleep(1)
    return "reported"


DEMO_SCHEDULES = {
    # schedule name: (dotted function path, minutes between runs)
    "refresh-cache": ("rsr_tasks.demo.jobs.refresh_cache", 1),
    "send-digest": ("rsr_tasks.demo.jobs.send_digest", 1),
    "slow-report": ("rsr_tasks.demo.jobs.slow_report", 2),
}


def register_schedules() -> list[str]:
    """Create or update the demo Schedule rows; returns their names."""
    from django_q.models import Schedule

    for name, (func, minutes) in DEMO_SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes,
                      "repeats": -1},
        )
    return list(DEMO_SCHEDULES)
