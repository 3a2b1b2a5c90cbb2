"""Redis loses its data (FLUSHALL: what a restart without persistence or a flush does)
under a running cluster: the unique-task gauges vanish and are back after the next run
of each task, without a new worker process (real Redis, qcluster and exporter)."""

from __future__ import annotations

import subprocess

from tests.procs import PYTHON, ROOT, RedisServer, wait_for

GAUGES = ("django_q_unique_task_running", "django_q_unique_task_heartbeat_timeout_seconds",
          "django_q_unique_task_last_success_timestamp_seconds")
TASKS = ("dq-sleeper", "dq-logged")


def run_each(env, runlog) -> None:
    code = ("import django, sys; django.setup()\nfrom django_q.tasks import async_task\n"
            "async_task('tests.unique_jobs.sleeper', 0.05)\n"
            "async_task('tests.unique_jobs.logged_run', sys.argv[1], 0.05)\n")
    subprocess.run([PYTHON, "-c", code, str(runlog)], cwd=ROOT, env=env, check=True,
                   timeout=60, capture_output=True)


def shown(exporter) -> set[tuple[str, str]]:
    return {(name, dict(labels).get("task")) for name, labels in exporter.samples()
            if name in GAUGES}


def test_gauges_back_after_the_next_run_of_each_task(make_env, procs, tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        env = make_env("redis", REDIS_URL=server.url, Q_WORKERS="1", Q_RECYCLE="1000")
        exporter = procs.exporter(env)
        exporter.wait_ready_to_serve()
        cluster = procs.qcluster(env)
        everything = {(g, t) for g in GAUGES for t in TASKS}
        run_each(env, tmp_path / "runs.log")
        wait_for(lambda: everything <= shown(exporter), 30, 0.2, "every gauge of both tasks")
        pids_before = set(cluster_worker_pids(cluster.pid))

        server.client().flushall()
        wait_for(lambda: not shown(exporter) & everything, 10, 0.2, "the gauges to vanish")
        run_each(env, tmp_path / "runs.log")
        wait_for(lambda: everything <= shown(exporter), 30, 0.2,
                 "every gauge of both tasks after one run each")
        assert set(cluster_worker_pids(cluster.pid)) == pids_before, \
            "the same worker processes: no new registration at spawn brought them back"
        cluster.stop()  # before Redis, or qcluster hangs on its shutdown writes
    finally:
        server.stop()


def cluster_worker_pids(root: int) -> list[int]:
    """The qcluster's descendant processes (its sentinel, pusher, monitor and workers)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True,
                         check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return sorted(found)
