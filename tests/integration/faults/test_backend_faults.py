"""Backend faults with real servers: blackholes, restarts, killed connections.

The blackhole is a real TCP listener that accepts connections and never answers
(what a hung Redis or PostgreSQL, or a dropped network path, looks like to a client).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import pytest

from tests.procs import PYTHON, ROOT, PostgresServer, RedisServer, migrate, wait_for


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


def collector_success(samples: dict) -> dict[str, float]:
    """collector -> django_q_exporter_collector_success, from one scrape's samples."""
    return {dict(labels)["collector"]: v for (name, labels), v in samples.items()
            if name == "django_q_exporter_collector_success"}


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
        success = collector_success(samples)
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
        assert all(v == 1 for v in collector_success(samples).values())
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


def test_postgres_server_restart_recovers(make_env, procs):
    """A private PostgreSQL server (never the shared one) stopped and started again.

    Set-up: ORM broker and the Django cache (cluster Stats, unique-task records) in
    that server, a real qcluster and the exporter on it. Three phases, one server:

    1. Restart between two scrapes (``pg_ctl stop -m fast`` + start): every pool
       thread of the exporter still holds a connection the server dropped. The very
       next scrape must already read everything (exporter.sources.dbconn reconnects
       once on a lost connection; before it, each pool thread failed once after the
       database was back: collector_success 0 / broker_up 0 for a while).
    2. Outage: the server stops while scrapes run back to back in a thread (one is
       in flight during the stop). Every /metrics answers 200 within the scrape
       bound; the database collectors read 0, broker_up 0; /healthz turns 503
       (each answer < 1 s), its verbose JSON names the broker; /livez stays 200.
    3. Start again on the same port: broker_up 1 and every collector 1 without
       restarting the exporter; the cluster's Stat comes back (cluster_up 1,
       /healthz 200) and a task enqueued afterwards runs.

    What django-q2 1.11's own qcluster does (observed, not hidden): its process
    survives, but the pusher's failed dequeue logs a traceback, sleeps 10 s and
    exits; the sentinel then reincarnates it ("reincarnated pusher ... after sudden
    death"). Stats are saved again as soon as the database is back, so cluster_up
    returns first; tasks are pulled again only ~10 s after the outage began.
    """
    t0 = time.monotonic()
    server = PostgresServer()
    try:
        server.start()
        print(f"private PostgreSQL: initdb {server.initdb_seconds:.2f} s, "
              f"initdb+start+createdb {time.monotonic() - t0:.2f} s")
        env = make_env("postgres", DATABASE_URL=server.url)
        migrate(env)
        cluster = procs.qcluster(env)
        exporter = procs.exporter(env, "--backend-timeout", "0.5", "--scrape-timeout", "2")
        exporter.wait_ready_to_serve()
        cname = env["DJANGO_Q_NAME"]
        wait_for(lambda: exporter.get("/healthz")[0] == 200, 60, what="local cluster ready")
        assert exporter.value("django_q_broker_up", broker="orm") == 1
        assert exporter.value("django_q_cluster_up", cluster_name=cname) == 1

        def success() -> dict[str, float]:
            return collector_success(exporter.samples())

        # 1. Restart between scrapes: the next scrape reads everything.
        for _ in range(3):  # several pool threads hold a database connection
            assert set(success().values()) == {1}
        t1 = time.monotonic()
        server.stop()
        server.start()
        print(f"restart between scrapes (pg_ctl stop -m fast + start): "
              f"{time.monotonic() - t1:.2f} s")
        first = exporter.samples()
        assert collector_success(first) == dict.fromkeys(
                    ("clusters", "local", "queue", "pod", "unique_tasks", "schedules"), 1), first
        assert first[("django_q_broker_up", (("broker", "orm"),))] == 1

        # 2. Outage, with scrapes in flight while the server stops.
        scrapes: list[tuple[float, float, int]] = []  # (start, end, status)
        halt = threading.Event()

        def scrape_loop() -> None:
            while not halt.is_set():
                s0 = time.monotonic()
                status = exporter.get("/metrics", timeout=10)[0]
                scrapes.append((s0, time.monotonic(), status))

        scraper = threading.Thread(target=scrape_loop, daemon=True)
        scraper.start()
        wait_for(lambda: len(scrapes) >= 3, 10, 0.01, what="scrapes running")
        stop_began = time.monotonic()
        server.stop()
        stop_ended = time.monotonic()
        wait_for(lambda: any(s > stop_ended for s, _, _ in scrapes), 10, 0.01,
                 what="a scrape after the stop")
        halt.set()
        scraper.join(15)
        assert any(s < stop_ended and e > stop_began for s, e, _ in scrapes), \
            "no scrape was in flight during the stop"
        assert {st for _, _, st in scrapes} == {200}
        assert max(e - s for s, e, _ in scrapes) < 3.0, scrapes  # scrape timeout 2 s

        def health_503() -> bool:
            (status, body, _), took = timed(lambda: exporter.get("/healthz", timeout=5))
            assert took < 1.0, took
            return (status, body) == (503, "false")

        wait_for(health_503, 2, 0.02, what="/healthz 503 after the stop")
        print(f"/healthz 503 {time.monotonic() - stop_ended:.2f} s after the stop")
        status, body, _ = exporter.get("/healthz?verbose=1")
        checks = {c["name"]: c for c in json.loads(body)["checks"]}
        assert status == 503 and not checks["broker"]["ok"], body
        assert exporter.get("/livez")[:2] == (200, "true")
        (status, _, _), took = timed(lambda: exporter.get("/metrics", timeout=10))
        assert status == 200 and took < 3.0, took
        down = success()
        assert {c for c, v in down.items() if v == 0} == {
            "clusters", "queue", "schedules", "unique_tasks"}, down
        assert down["pod"] == 1
        assert exporter.value("django_q_broker_up", broker="orm") == 0
        assert cluster.alive(), cluster.output()[-3000:]

        # 3. Back on the same port: recovery without restarting the exporter.
        t1 = time.monotonic()
        server.start()
        print(f"start after the outage: {time.monotonic() - t1:.2f} s")
        wait_for(lambda: exporter.value("django_q_broker_up", broker="orm") == 1
                 and set(success().values()) == {1}, 10, what="collectors recovered")
        print(f"exporter recovered {time.monotonic() - t1:.2f} s after the start")
        wait_for(lambda: exporter.value("django_q_cluster_up", cluster_name=cname) == 1
                 and exporter.get("/healthz")[:2] == (200, "true"), 30,
                 what="cluster_up 1 and /healthz 200 after the restart")
        print(f"cluster_up 1, /healthz 200 {time.monotonic() - t1:.2f} s after the start")
        status, body, _ = exporter.get("/healthz?verbose=1")
        assert status == 200 and json.loads(body)["ok"] is True, body
        for _ in range(3):  # stays recovered
            assert set(success().values()) == {1}
        subprocess.run([PYTHON, "-c", "import django; django.setup()\n"
                        "from django_q.tasks import async_task\n"
                        "async_task('math.floor', 1.5)\n"],
                       cwd=ROOT, env=env, check=True, timeout=60, capture_output=True)
        wait_for(lambda: exporter.value("django_q_tasks_total", func="math.floor") == 1, 40,
                 0.2, what="a task enqueued after the restart to run")
        print(f"task after the restart done {time.monotonic() - t1:.2f} s after the start; "
              "reincarnations "
              f"{exporter.value('django_q_cluster_reincarnations_total', cluster_name=cname)}")
        assert cluster.alive(), cluster.output()[-3000:]
        assert "Traceback" not in exporter.output()
        cluster.stop()  # while its database is still there (else its stop takes ~10 s)
    finally:
        server.remove()
    print(f"test total {time.monotonic() - t0:.1f} s")
