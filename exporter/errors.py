"""One-line descriptions of errors, for logs, probe reasons and start-up messages.

Driver errors (libpq, redis-py) carry newlines and tabs; the house rule is one
log line per event and one line on stderr for a bad start, so every error
text that leaves the process goes through here.
"""

from __future__ import annotations


def one_line(text: object, limit: int = 300) -> str:
    """``text`` with all whitespace runs collapsed to one space, cut at ``limit``."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of an exception, on one line."""
    return one_line(f"{type(exc).__name__}: {exc}", limit)
