"""Backend faults with real servers: blackholes, restarts, killed connections.

The blackhole is a real TCP listener that accepts connections and never answers
(what a hung Redis or PostgreSQL, or a dropped network path, looks like to a client).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.procs import RedisServer, wait_for


class Blackhole:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.halt = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.halt:
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)  # never read, never answer
            except OSError:
                return

    def close(self) -> None:
        self.halt = True
        self.sock.close()
        for c in self.held:
            c.close()


def timed(fn):
    t0 = time.monotonic()
    value = fn()
    return value, time.monotonic() - t0


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_blackholed_backend_bounds_scrapes_and_probes(kind, make_env, procs):
    hole = Blackhole()
    try:
        if kind == "redis":
            env = make_env("redis", REDIS_URL=f"redis://127.0.0.1:{hole.port}/0")
            failing = {"clusters", "queue", "unique_tasks"}
        else:
            env = make_env("postgres",
                           DATABASE_URL=f"postgres://postgres@127.0.0.1:{hole.port}/x")
            failing = {"clusters", "queue", "schedules", "unique_tasks"}  # cache is in PG
        exporter = procs.exporter(env, "--backend-timeout", "0.5", "--scrape-timeout", "2")
        exporter.wait_ready_to_serve()
        for _ in range(3):  # repeated scrapes do not pile up
            (status, _, _), took = timed(lambda: exporter.get("/metrics", timeout=10))
            assert status == 200 and took < 3.0, took
            (health, body, _), took = timed(lambda: exporter.get("/healthz", timeout=5))
            assert (health, body) == (503, "false") and took < 1.0, took
            assert exporter.get("/livez")[:2] == (200, "true")
        samples = exporter.samples()
        success = {dict(labels)["collector"]: v for (name, labels), v in samples.items()
                   if name == "django_q_exporter_collector_success"}
        assert {c for c, v in success.items() if v == 0} == failing, success
        assert success["pod"] == 1
        broker = [v for (name, _), v in samples.items() if name == "django_q_broker_up"]
        assert broker == [0]
        assert "Traceback" not in exporter.output()
    finally:
        hole.close()


def test_redis_restart_recovers_without_exporter_restart(make_env, procs, tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        env = make_env("redis", REDIS_URL=server.url)
        exporter = procs.exporter(env)
        exporter.wait_ready_to_serve()
        assert exporter.value("django_q_broker_up") == 1
        server.stop()  # drops every connection of the exporter's pool
        wait_for(lambda: exporter.value("django_q_broker_up") == 0, 10, what="broker_up 0")
        assert exporter.get("/healthz")[0] == 503
        server.start()
        wait_for(lambda: exporter.value("django_q_broker_up") == 1, 10, what="broker_up 1")
        samples = exporter.samples()
        assert all(v == 1 for (n, _), v in samples.items()
                   if n == "django_q_exporter_collector_success")
    finally:
        server.stop()


def test_postgres_connections_killed_recover(make_env, procs, pg_migrated):
    import psycopg

    env = make_env("postgres")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert exporter.value("django_q_broker_up", broker="orm") == 1
    dbname = pg_migrated.rsplit("/", 1)[1]
    with psycopg.connect(pg_migrated.rsplit("/", 1)[0] + "/test", autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchone()[0]
    assert killed >= 1  # the exporter's persistent connections were there
    # The next reads may fail once on the dead connection; then they reconnect.
    wait_for(lambda: exporter.value("django_q_broker_up", broker="orm") == 1
             and exporter.value("django_q_exporter_collector_success", collector="queue") == 1,
             10, what="recovery after terminated connections")
    assert "Traceback" not in exporter.output()
