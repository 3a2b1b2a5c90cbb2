"""Numbers and durations as a person reads them at a glance (pure)."""

from __future__ import annotations

import datetime as dt


def duration(seconds: float | None) -> str:
    """3.2 s, 42 s, 4 min 10 s, 2 h 5 min, 3 d 4 h; an em dash for unknown."""
    if seconds is None:
        return "—"
    s = abs(seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    whole = int(round(s))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def ago(seconds: float | None, never: str = "never") -> str:
    return never if seconds is None else f"{duration(seconds)} ago"


def short_seconds(seconds: float | None) -> str:
    """Task durations: milliseconds below a second."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return duration(seconds)


def count(n: int | float | None) -> str:
    return "—" if n is None else f"{int(n):,}".replace(",", "\u202f")


def ratio(r: float | None) -> str:
    if r is None:
        return "—"
    pct = r * 100
    return f"{pct:.0f} %" if pct >= 10 or pct == 0 else f"{pct:.1f} %"


def rate(per_minute: float | None) -> str:
    if per_minute is None:
        return "—"
    return f"{per_minute:.0f}/min" if per_minute >= 10 else f"{per_minute:.1f}/min"


def utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
