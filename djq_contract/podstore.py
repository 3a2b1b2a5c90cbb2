"""The per-pod metric store: counters and histograms written by the cluster's processes.

django-q2 runs tasks in worker processes that are recycled after ``recycle``
tasks and reincarnated after timeouts, and fires ``post_execute`` in yet
another process (the monitor). Counts recorded there must survive those
processes and be served by the probe server of the same pod. prometheus
client's multiprocess mode keeps one file per pid (unbounded with worker
churn, wiped at start); instead this is one SQLite file in WAL mode, keyed by
(family, suffix, labels): every write is an atomic UPSERT of deltas, so
storage is bounded by label cardinality, never by the number of processes,
and a process exiting loses nothing it committed.

Stdlib only (Django settings are read only to find the default path):
imported by workers and by the exporter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("exporter.podstore")

ENV = "DJANGO_Q_EXPORTER_POD_STORE"
OTHER = "other"  # label value that absorbs everything past a cardinality cap

#: Bumped when the layout changes; an older file is emptied (a counter reset).
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS family (name TEXT PRIMARY KEY, type TEXT NOT NULL, help TEXT NOT NULL,
    buckets TEXT);
CREATE TABLE IF NOT EXISTS sample (
    family TEXT NOT NULL, suffix TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (family, suffix, labels));
CREATE TABLE IF NOT EXISTS label_value (
    family TEXT NOT NULL, label TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (family, label, value));
"""


def default_path(cluster_name: str, settings_module: str | None,
                 tmpdir: str | None = None) -> str:
    """The store used when none is configured: one file per (settings module, cluster name).

    A single file per host made two projects, or two clusters of one project, add to
    each other's counters. The cluster name keeps the file name readable; the hash
    of both tells apart projects that use the same cluster name. Workers and the
    exporter both reach this through ``path_for_django``, so they agree."""
    digest = hashlib.sha256(f"{settings_module or ''}\n{cluster_name}".encode()).hexdigest()
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", cluster_name).strip("-.")[:40] or "cluster"
    base = Path(tmpdir or tempfile.gettempdir()) / "django-q-exporter"
    return str(base / f"pod-metrics-{readable}-{digest[:12]}.sqlite3")


def configured_path() -> str | None:
    """``$DJANGO_Q_EXPORTER_POD_STORE``, else Django's setting of that name, else None."""
    path = os.environ.get(ENV)
    if path:
        return path
    from django.conf import settings

    return getattr(settings, ENV, None) or None


def path_for_django(cluster_name: str | None = None) -> str:
    """The store path of the loaded Django project: the configured one, else
    ``default_path`` of ``cluster_name`` (default ``Q_CLUSTER["name"]``, as django-q2
    names the cluster) and the settings module."""
    configured = configured_path()
    if configured:
        return configured
    from django.conf import settings

    if cluster_name is None:
        cluster_name = (getattr(settings, "Q_CLUSTER", None) or {}).get("name", "default")
    return default_path(str(cluster_name), getattr(settings, "SETTINGS_MODULE", None))


@dataclass(frozen=True)
class Update:
    """Add ``value`` to (family, suffix, labels); mode "max" keeps the larger value."""

    family: str
    suffix: str
    labels: tuple[tuple[str, str], ...]
    value: float
    mode: str = "inc"


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    help: str
    buckets: tuple[float, ...] | None = None  # histogram bounds, ascending (no +Inf)


def labels_of(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def le_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def histogram_updates(family: str, labels: dict[str, str], value: float,
                      buckets: Sequence[float]) -> list[Update]:
    """One observation: +1 in the single bucket it falls in (stored non-cumulative, so a
    write touches 3 rows, not one per bucket), + _count and _sum. The reader makes the
    buckets cumulative using the bounds given to ``declare``."""
    bound = next((b for b in buckets if value <= b), float("inf"))
    return [Update(family, "_bucket", labels_of(**labels, le=le_label(bound)), 1.0),
            Update(family, "_count", labels_of(**labels), 1.0),
            Update(family, "_sum", labels_of(**labels), float(value))]


class PodStore:
    """One connection per process (re-opened after fork), serialised by a lock."""

    def __init__(self, path: str | None = None, busy_timeout_ms: int = 2000) -> None:
        self.path = path or path_for_django()
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
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate(conn)
            self._conn, self._pid = conn, os.getpid()
            self._declared = set()
            self._admitted = {}
        return self._conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switching a new file to WAL takes an exclusive lock without calling the busy
        handler: a process opening the same new file at that moment (workers and monitor
        at their first task) gets "database is locked" at once. Retry within the timeout."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Create the tables, or empty a file of another layout (checked under the write
        lock, so two processes opening a new file at once cannot wipe each other)."""
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                for table in ("family", "sample", "label_value"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")  # noqa: S608 (constants)
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def declare(self, name: str, type_: str, help_: str,
                buckets: Sequence[float] | None = None) -> None:
        """Record a family's type, help and (histograms) bucket bounds, once per process."""
        if name in self._declared:
            return
        bounds = json.dumps(sorted(float(b) for b in buckets if b != float("inf"))) \
            if buckets else None
        with self._lock:
            self._connection().execute(
                "INSERT INTO family(name, type, help, buckets) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET type = excluded.type, help = excluded.help, "
                "buckets = excluded.buckets", (name, type_, help_, bounds))
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

    def read(self) -> tuple[dict[str, Family], list[tuple[str, str, str, float]]]:
        """(declared families by name, samples as (family, suffix, labels JSON, value)).

        Raw rows in the primary key's order (no sort): decoding the labels is left to
        the reader, which caches it from one scrape to the next."""
        with self._lock:
            conn = self._connection()
            families = {n: Family(n, t, h, tuple(json.loads(b)) if b else None)
                        for n, t, h, b in conn.execute(
                            "SELECT name, type, help, buckets FROM family")}
            rows = conn.execute("SELECT family, suffix, labels, value FROM sample "
                                "WHERE family IN (SELECT name FROM family)").fetchall()
        return families, rows

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
