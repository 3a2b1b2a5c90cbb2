"""Read django-q Schedule rows: one bounded query, read-only."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.sources.decode import epoch


@dataclass(frozen=True)
class ScheduleRow:
    id: int
    name: str  # the schedule's name, or "<func>#<id>" when it has none
    next_run: float | None  # Unix time


class ScheduleSource:
    """Active schedules (``repeats != 0``): at most ``limit`` rows, most overdue first.

    ``repeats = 0`` is how django-q2 marks a schedule that has run out (its
    scheduler skips those rows too). Ordering by ``next_run`` means that on a
    table larger than ``limit`` the rows left out are the ones due last, never
    an overdue one. The query runs on the database the router picks for reading
    Schedule, with the statement timeout set up in ``exporter.djangoenv``.
    """

    def __init__(self, limit: int = 2000) -> None:
        self.limit = limit

    def read(self) -> list[ScheduleRow]:
        from django.db import router
        from django_q.models import Schedule

        from exporter.sources.dbconn import read_db

        alias = router.db_for_read(Schedule) or "default"

        def fetch() -> list:  # a new QuerySet per attempt
            return list(Schedule.objects.using(alias).exclude(repeats=0)
                        .order_by("next_run", "id").values_list("id", "name", "func", "next_run")
                        [: self.limit])

        rows = read_db(fetch)  # dead connections dropped, one reconnect
        return [ScheduleRow(pk, name or f"{func}#{pk}", epoch(next_run))
                for pk, name, func, next_run in rows]
