"""Session-wide real servers and per-test broker set-ups.

* ``redis_server``: a private redis-server on a free port (never the shared one).
* ``pg_url``: a throwaway PostgreSQL database, created and dropped here.
* ``make_env(kind)``: environment for one of the three broker set-ups
  ("sqlite", "postgres", "redis"), migrated, with a unique cluster name so
  tests never see each other's keys, rows or Stats.
* ``procs``: start qcluster / exporter processes that are stopped after the test.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests import procs as P

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
KINDS = ("sqlite", "postgres", "redis")
_names = itertools.count(1)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def redis_server(session_dir):
    server = P.RedisServer(session_dir / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url():
    import psycopg

    name = f"dqe_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(session_dir) -> Path:
    """A migrated SQLite data dir, copied per test (migrating each time is slow)."""
    data = session_dir / "sqlite-template"
    P.migrate(P.base_env(DJANGO_Q_DATA_DIR=str(data)))
    return data


@pytest.fixture(scope="session")
def pg_migrated(pg_url) -> str:
    P.migrate(P.base_env(DATABASE_URL=pg_url, DJANGO_Q_DATA_DIR="/nonexistent"))
    return pg_url


@pytest.fixture
def make_env(request, tmp_path, sqlite_template):
    """``make_env(kind, **extra)`` -> env dict for that broker set-up."""

    def make(kind: str, **extra: str) -> dict[str, str]:
        assert kind in KINDS, kind
        name = f"t{next(_names)}x{uuid.uuid4().hex[:6]}"
        data = tmp_path / f"data-{name}"
        env = {"DJANGO_Q_NAME": name, "DJANGO_Q_DATA_DIR": str(data),
               "DJANGO_Q_EXPORTER_POD_STORE": str(tmp_path / f"pod-{name}.sqlite3"),
               "DJANGO_SECRET_KEY": "test-secret-key"}
        if kind == "postgres":
            env["DATABASE_URL"] = request.getfixturevalue("pg_migrated")
        else:
            shutil.copytree(sqlite_template, data)
        if kind == "redis":
            env["REDIS_URL"] = request.getfixturevalue("redis_server").url
        env.update(extra)
        return P.base_env(**env)

    return make


@pytest.fixture
def procs(tmp_path):
    """Factory for processes that are always stopped at the end of the test."""
    started: list[P.Proc] = []

    class Factory:
        def qcluster(self, env, hostname=None, name="qcluster") -> P.Proc:
            p = P.qcluster(env, tmp_path / f"{name}-{len(started)}.log", hostname)
            started.append(p)
            return p

        def exporter(self, env, *flags, hostname=None, name="exporter", port=None) -> P.Exporter:
            p = P.Exporter(env, tmp_path / f"{name}-{len(started)}.log", *flags,
                           hostname=hostname, port=port)
            started.append(p)
            return p

    yield Factory()
    for p in reversed(started):
        p.stop()
