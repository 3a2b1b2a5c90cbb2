"""Read django-q Schedule rows: one bounded query, read-only."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.sources.decode import epoch


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    next_run: float | None  # Unix time


class ScheduleSource:
    """Active schedules (repeats != 0), at most ``limit`` rows, most overdue first."""

    def __init__(self, limit: int = 2000) -> None:
        self.limit = limit

    def read(self) -> list[ScheduleRow]:
        from django.db import connections, router
        from django_q.models import Schedule

        alias = router.db_for_read(Schedule) or "default"
        try:
            rows = list(Schedule.objects.using(alias).exclude(repeats=0)
                        .order_by("next_run").values_list("id", "name", "func", "next_run")
                        [: self.limit])
        except Exception:
            connections[alias].close()
            raise
        return [ScheduleRow(name or f"{func}#{pk}", epoch(next_run))
                for pk, name, func, next_run in rows]
