"""Django database reads from the exporter's pool threads: drop dead connections, reconnect once.

Django closes unusable connections at request boundaries (its request_started /
request_finished signals). The exporter serves no Django requests: each pool
thread keeps its own connection per alias for as long as the thread lives. A
database restart kills all of them, and a client learns it only at its next
query. Without this, every pool thread would fail once with "terminating
connection due to administrator command" *after* the server is back: a
spurious ``collector_success 0`` / ``broker_up 0`` here and there for a while.

So a read that fails on a connection this thread opened before, and that the
driver now reports as lost (psycopg ``broken`` / ``closed``), runs once more on
a new connection. A statement timeout or a refused connection is not retried (the
connection is not lost, or none was reused): a failing backend costs no extra wait.
After any failure every connection of this thread is closed, so nothing broken
is reused next scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from exporter.errors import describe

log = logging.getLogger("exporter.sources.dbconn")

T = TypeVar("T")


def read_db(read: Callable[[], T]) -> T:
    """Run ``read`` (ORM queries or DatabaseCache calls); reconnect once if its
    connection was lost since this thread last used it."""
    from django.db import connections

    opened = [c for c in connections.all(initialized_only=True) if c.connection is not None]
    try:
        return read()
    except Exception as exc:
        lost = [c.alias for c in opened if _lost(c.connection)]
        close_all()
        if not lost:
            raise
        log.debug("database connection %s lost (%s): reconnecting once",
                  ",".join(lost), describe(exc))
    try:
        return read()
    except Exception:
        close_all()
        raise


def _lost(raw) -> bool:
    """The driver says this connection is gone (psycopg 3 ``broken``, psycopg 2 ``closed``)."""
    if raw is None:
        return False
    return bool(getattr(raw, "broken", False) or getattr(raw, "closed", False))


def close_all() -> None:
    """Close every database connection this thread holds (a DatabaseCache may use any alias)."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception as exc:
            log.debug("closing %s: %s", conn.alias, describe(exc))
