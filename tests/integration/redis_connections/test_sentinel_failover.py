"""A real Redis Sentinel failover under a running cluster: one primary, one replica and
three sentinels (redis-server and redis-sentinel processes on free loopback ports); the
cache, the broker and the unique-task locks all reach Redis through django-redis'
Sentinel connection factory. The primary is SIGKILLed while a unique task holds its
lock; the sentinels promote the replica."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from tests.procs import PYTHON, ROOT, RedisSentinel, RedisServer, wait_for

SERVICE = "dqsvc"
DOWN_AFTER = 1.0  # seconds (sentinel down-after-milliseconds)
SCRAPE_TIMEOUT = 3.0


@pytest.fixture
def sentinel_stack(tmp_path):
    primary = RedisServer(tmp_path / "primary").start()
    replica = RedisServer(tmp_path / "replica",
                          extra_args=("--replicaof", "127.0.0.1", str(primary.port))).start()
    sentinels = []
    try:
        for i in range(3):
            sentinels.append(RedisSentinel(tmp_path / f"sentinel-{i}", SERVICE, primary.port,
                                           down_after_ms=int(DOWN_AFTER * 1000),
                                           failover_timeout_ms=3000).start())
        wait_for(lambda: replica.client().info("replication")["master_link_status"] == "up",
                 20, 0.05, "the replica to sync")
        wait_for(lambda: all(s.knows(replicas=1, sentinels=2) for s in sentinels), 30, 0.1,
                 "the sentinels to find the replica and each other")
        yield primary, replica, sentinels
    finally:
        for proc in [*sentinels, replica, primary]:
            proc.stop()


def enqueue(env, runlog, *seconds: float) -> None:
    code = ("import django, sys; django.setup()\nfrom django_q.tasks import async_task\n"
            "for s in sys.argv[2:]:\n"
            "    async_task('tests.unique_jobs.logged_run', sys.argv[1], float(s))\n")
    subprocess.run([PYTHON, "-c", code, str(runlog), *map(str, seconds)], cwd=ROOT, env=env,
                   check=True, timeout=60, capture_output=True)


def runs(runlog) -> list[tuple[int, float, float | None, bool | None]]:
    """(pid, start, end, held to the end) per run, from the run log the task writes."""
    out, open_runs = [], {}
    lines = runlog.read_text().splitlines() if runlog.exists() else []
    for line in lines:
        kind, pid, at, *rest = line.split()
        if kind == "start":
            open_runs[pid] = len(out)
            out.append((int(pid), float(at), None, None))
        else:
            i = open_runs.pop(pid)
            out[i] = (out[i][0], out[i][1], float(at), rest[0] == "1")
    return out


class Watcher:
    """Scrapes /metrics and probes /healthz in a loop, recording each answer's time,
    status and latency (the client waits far longer than the scrape timeout, so a hang
    would show as a long latency, not as a client error)."""

    def __init__(self, exporter) -> None:
        self.exporter = exporter
        self.scrapes: list[tuple[float, int, float]] = []
        self.probes: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self, path: str, into: list) -> None:
        t0 = time.monotonic()
        try:
            status = self.exporter.get(path, timeout=SCRAPE_TIMEOUT + 10)[0]
        except Exception:
            status = 0
        into.append((time.time(), status, time.monotonic() - t0))

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._one("/metrics", self.scrapes)
            self._one("/healthz", self.probes)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


def test_primary_killed_replica_promoted(make_env, procs, sentinel_stack, tmp_path):
    primary, replica, sentinels = sentinel_stack
    env = make_env("redis", Q_WORKERS="2", DJANGO_SETTINGS_MODULE="tests.settings_variants",
                   REDIS_URL=primary.url, TEST_REDIS_SERVICE=SERVICE,
                   TEST_REDIS_SENTINELS=",".join(f"127.0.0.1:{s.port}" for s in sentinels))
    exporter = procs.exporter(env, "--scrape-timeout", str(SCRAPE_TIMEOUT))
    exporter.wait_ready_to_serve()
    procs.qcluster(env)
    wait_for(lambda: exporter.get("/healthz", timeout=2)[0] == 200, 60, 0.2, "ready")
    assert "sentinels 127.0.0.1:" in exporter.output(), "the start log names the sentinels"
    runlog = tmp_path / "runs.log"
    enqueue(env, runlog, 6, 6, 6)  # one holds the lock for 6 s, the others are skipped
    wait_for(lambda: runs(runlog), 30, 0.05, "the first run to start")

    with Watcher(exporter) as watch:
        time.sleep(1)  # scrapes and probes before the kill
        killed_at = time.time()
        primary.proc.kill()
        primary.proc.wait()
        wait_for(lambda: any(s.primary_port_now() == replica.port for s in sentinels),
                 30, 0.05, "the sentinels to promote the replica")
        promoted_at = time.time()
        wait_for(lambda: watch.probes[-1][0] > promoted_at and watch.probes[-1][1] == 200,
                 DOWN_AFTER + SCRAPE_TIMEOUT + 20, 0.05, "/healthz 200 after the promotion")
        recovered_at = watch.probes[-1][0]
        enqueue(env, runlog, 1, 1, 1, 1)  # the broker and the lock on the new primary
        wait_for(lambda: len(runs(runlog)) >= 2 and all(r[2] for r in runs(runlog)),
                 60, 0.1, "a run after the failover, every run ended")
        wait_for(lambda: exporter.value("django_q_unique_task_running", task="dq-logged") == 0,
                 10, 0.1, "the last release seen")

    print(f"failover: promoted {promoted_at - killed_at:.2f} s after the kill, /healthz "
          f"200 {recovered_at - promoted_at:.2f} s after the promotion; "
          f"{len(watch.scrapes)} scrapes, slowest {max(d for _, _, d in watch.scrapes):.2f} s")
    assert all(status == 200 for _, status, _ in watch.scrapes), watch.scrapes
    assert max(d for _, _, d in watch.scrapes) < SCRAPE_TIMEOUT + 1, "scrapes stay bounded"
    assert all(status in (200, 503) and d < 2 for _, status, d in watch.probes), watch.probes
    assert any(s == 503 for t, s, _ in watch.probes if killed_at < t < promoted_at), \
        "the outage was seen by the probe"
    assert recovered_at - promoted_at < DOWN_AFTER + SCRAPE_TIMEOUT + 1, \
        "probes recover by themselves within one down-after plus a scrape"

    log = runs(runlog)
    ordered = sorted(log, key=lambda r: r[1])
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert before[2] <= after[1], f"two holders at once: {before} and {after}"
    first = ordered[0]
    assert first[1] < killed_at and first[2] > promoted_at and first[3], \
        "the run that held the lock through the failover kept it"
    assert any(r[1] > promoted_at for r in log), "a new run took the lock on the new primary"
    assert exporter.value("django_q_unique_task_lock_lost_total", task="dq-logged") == 0
    assert exporter.value("django_q_unique_task_lock_contended_total", task="dq-logged") >= 2
