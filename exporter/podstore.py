"""The per-pod metric store: counters and histograms written by worker processes.

django-q2 runs tasks in worker processes that are recycled after ``recycle``
tasks and reincarnated after timeouts, and fires ``post_execute`` in yet
another process (the monitor). Counts recorded there must survive those
processes and be served by the probe server of the same pod. prometheus
client's multiprocess mode keeps one file per pid (unbounded with worker
churn, wiped at start); instead this is one SQLite file in WAL mode, keyed by
(family, suffix, labels): every write is an atomic UPSERT of deltas, so
storage is bounded by label cardinality, never by the number of processes,
and a process exiting loses nothing it committed.

Stdlib only: imported by workers and by the exporter.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("exporter.podstore")

ENV = "DJANGO_Q_EXPORTER_POD_STORE"
OTHER = "other"  # label value that absorbs everything past a cardinality cap

_SCHEMA = """
CREATE TABLE IF NOT EXISTS family (name TEXT PRIMARY KEY, type TEXT NOT NULL, help TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sample (
    family TEXT NOT NULL, suffix TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (family, suffix, labels));
CREATE TABLE IF NOT EXISTS label_value (
    family TEXT NOT NULL, label TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (family, label, value));
"""


def default_path() -> str:
    """``$DJANGO_Q_EXPORTER_POD_STORE``, else Django's setting of that name, else /tmp."""
    path = os.environ.get(ENV)
    if not path:
        try:
            from django.conf import settings

            path = getattr(settings, ENV, None)
        except Exception:  # Django not configured: stdlib-only use
            path = None
    return path or str(Path(tempfile.gettempdir()) / "django-q-exporter" / "pod-metrics.sqlite3")


@dataclass(frozen=True)
class Update:
    """Add ``value`` to (family, suffix, labels); mode "max" keeps the larger value."""

    family: str
    suffix: str
    labels: tuple[tuple[str, str], ...]
    value: float
    mode: str = "inc"


@dataclass(frozen=True)
class Row:
    family: str
    type: str
    help: str
    suffix: str
    labels: dict[str, str]
    value: float


def labels_of(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def histogram_updates(family: str, labels: dict[str, str], value: float,
                      buckets: Sequence[float]) -> list[Update]:
    """Cumulative bucket increments (every bucket row exists, even at 0) + _count + _sum."""
    updates = []
    for bound in buckets:
        le = "+Inf" if bound == float("inf") else repr(float(bound))
        updates.append(Update(family, "_bucket", labels_of(**labels, le=le),
                              1.0 if value <= bound else 0.0))
    if not buckets or buckets[-1] != float("inf"):
        updates.append(Update(family, "_bucket", labels_of(**labels, le="+Inf"), 1.0))
    updates.append(Update(family, "_count", labels_of(**labels), 1.0))
    updates.append(Update(family, "_sum", labels_of(**labels), float(value)))
    return updates


class PodStore:
    """One connection per process (re-opened after fork), serialised by a lock."""

    def __init__(self, path: str | None = None, busy_timeout_ms: int = 2000) -> None:
        self.path = path or default_path()
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._declared: set[str] = set()
        self._admitted: dict[tuple[str, str], set[str]] = {}

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
            self._declared = set()
            self._admitted = {}
        return self._conn

    def declare(self, name: str, type_: str, help_: str) -> None:
        """Record a family's type and help (once per process)."""
        if name in self._declared:
            return
        with self._lock:
            self._connection().execute(
                "INSERT INTO family(name, type, help) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET type = excluded.type, help = excluded.help",
                (name, type_, help_))
            self._declared.add(name)

    _UPSERT = {  # complete statements: nothing from the caller is spliced into SQL
        "inc": "INSERT INTO sample VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE "
               "SET value = value + excluded.value",
        "max": "INSERT INTO sample VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE "
               "SET value = max(value, excluded.value)",
        "set": "INSERT INTO sample VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE "
               "SET value = excluded.value",
    }

    def apply(self, updates: Iterable[Update]) -> None:
        """Apply all updates in one transaction (all or nothing)."""
        by_mode: dict[str, list[tuple]] = {}
        for u in updates:
            by_mode.setdefault(u.mode, []).append(
                (u.family, u.suffix, json.dumps(dict(u.labels), sort_keys=True), u.value))
        if not by_mode:
            return
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for mode, rows in by_mode.items():
                    conn.executemany(self._UPSERT[mode], rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def admit(self, family: str, label: str, value: str, cap: int) -> str:
        """Return ``value`` if it is (or can become) one of at most ``cap`` values of
        ``label`` in ``family``, else ``OTHER``. Shared by all processes of the pod."""
        known = self._admitted.setdefault((family, label), set())
        if value in known:
            return value
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT OR IGNORE INTO label_value(family, label, value) "
                    "SELECT ?, ?, ? WHERE (SELECT count(*) FROM label_value "
                    "WHERE family = ? AND label = ?) < ?",
                    (family, label, value, family, label, cap))
                ok = conn.execute(
                    "SELECT 1 FROM label_value WHERE family = ? AND label = ? AND value = ?",
                    (family, label, value)).fetchone() is not None
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if ok:
            known.add(value)
            return value
        return OTHER

    def read(self) -> list[Row]:
        with self._lock:
            cur = self._connection().execute(
                "SELECT f.name, f.type, f.help, s.suffix, s.labels, s.value FROM sample s "
                "JOIN family f ON f.name = s.family ORDER BY f.name, s.labels, s.suffix")
            return [Row(n, t, h, suf, json.loads(lab), v) for n, t, h, suf, lab, v in cur]

    def value(self, family: str, suffix: str, labels: dict[str, str]) -> float | None:
        """One sample's value, or None if it was never written."""
        with self._lock:
            row = self._connection().execute(
                "SELECT value FROM sample WHERE family = ? AND suffix = ? AND labels = ?",
                (family, suffix, json.dumps(labels, sort_keys=True))).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
