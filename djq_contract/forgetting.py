"""When a registered unique task leaves the registry: the one rule writers and readers share.

A task is *seen* when a process registers it (worker start, a schedule that
points at it) and whenever a run takes, beats or releases its lock. A task
not seen for ``forget_after`` seconds is forgotten: the workers delete its
registry entry and record, and the exporter drops its series even before
they do (nothing may register again once every task of a site is gone).
That is how a task removed from the code stops ``NoRecentSuccess`` firing.

The default, 14 days, is twice the longest interval common schedules use
(weekly): a weekly task that misses one run is still listed, and still
alerting, when its next run is due. Set ``RSR_UNIQUE_TASKS["forget_after"]``
above the interval of the least frequent unique task. It is a fixed period,
not a multiple of the lock expiry: the expiry bounds one run, it says nothing
about how often a task runs.

Times are Unix seconds on the clock that wrote them (Redis ``TIME`` on the
Redis store, the writing host's clock on other caches).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from djq_contract.records import num

#: Seconds a task may go unseen before it is forgotten (14 days).
DEFAULT_FORGET_AFTER = 14 * 86400.0
#: The registry entry field a registration writes (the store's clock).
SEEN_FIELD = "seen"
#: Record fields that show a run took, beat or released the lock.
RUN_TIME_FIELDS = ("started", "beat", "last_end")


def forget_after(options: Mapping | None) -> float:
    """``RSR_UNIQUE_TASKS["forget_after"]`` in seconds (a positive finite number).

    Raises ValueError with a one-line message naming the setting."""
    raw = (options or {}).get("forget_after")
    if raw is None:
        return DEFAULT_FORGET_AFTER
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(raw, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"RSR_UNIQUE_TASKS['forget_after'] = {raw!r}: "
                         "expected a positive number of seconds")
    return value


def last_seen(entry: Mapping, record: Mapping) -> float | None:
    """The latest time the task was seen, from its registry entry and its record;
    None when neither carries a time (an entry written before times were kept)."""
    times = [num(entry.get(SEEN_FIELD))] + [num(record.get(f)) for f in RUN_TIME_FIELDS]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def forgotten(seen: float | None, now: float, period: float) -> bool:
    """True when a task last seen at ``seen`` is to be forgotten at ``now``. A task
    with no known time is kept (the writers stamp it, so it is forgotten a period later)."""
    return seen is not None and now - seen > period
