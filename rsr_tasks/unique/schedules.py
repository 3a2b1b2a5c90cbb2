"""Register unique tasks that django-q Schedule rows point at.

Runs when a worker process spawns (``post_spawn``), so a scheduled unique
task is visible to the exporter before its first run, even if no process
has imported its module yet.
"""

from __future__ import annotations

import logging

from django.utils.module_loading import import_string

log = logging.getLogger("rsr_tasks.unique")


def register_scheduled() -> list[str]:
    from django_q.models import Schedule

    from rsr_tasks.unique.decorator import register

    found = []
    for func_path in set(Schedule.objects.values_list("func", flat=True)):
        try:
            func = import_string(func_path)
        except Exception as exc:  # a broken schedule is django-q's problem to report
            log.debug("schedule func %s not importable: %s", func_path, exc)
            continue
        name = getattr(func, "unique_task_name", None)
        if name:
            register(name, func.unique_task_expiry)
            found.append(name)
    return found


def on_post_spawn(sender, **kwargs) -> None:
    try:
        register_scheduled()
    except Exception as exc:
        log.warning("could not register scheduled unique tasks: %s", exc)
