"""Several nodes, one broker; and the queue as seen while the cluster is stopped."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.procs import PYTHON, ROOT, wait_for


def test_two_nodes_share_one_redis(make_env, procs):
    """Each node's probe reflects its own cluster; each /metrics shows both."""
    env = make_env("redis", Q_WORKERS="1")
    nodes = {}
    for host in ("node-a", "node-b"):
        exporter = procs.exporter(env, hostname=host, name=f"exporter-{host}")
        cluster = procs.qcluster(env, hostname=host, name=f"qcluster-{host}")
        nodes[host] = (exporter, cluster)
    for exporter, _ in nodes.values():
        exporter.wait_ready_to_serve()
    for host, (exporter, _) in nodes.items():
        for other in nodes:
            wait_for(lambda e=exporter, o=other: e.value("django_q_cluster_up", host=o) == 1,
                     30, what=f"{host}'s exporter to see {other} up")
        wait_for(lambda e=exporter: e.get("/healthz")[0] == 200, 10, what=f"{host} ready")

    exporter_a, cluster_a = nodes["node-a"]
    exporter_b, _ = nodes["node-b"]
    cluster_a.signal_group(signal.SIGKILL)
    wait_for(lambda: exporter_a.get("/healthz")[:2] == (503, "false"), 12,
             what="node-a probe red")
    # node-b's exporter sees node-a go down (Stat expiry + grace) and stays green itself.
    wait_for(lambda: exporter_b.value("django_q_cluster_up", host="node-a") == 0, 15,
             what="node-b's exporter to see node-a down")
    assert exporter_b.get("/healthz")[:2] == (200, "true")
    assert exporter_b.value("django_q_cluster_up", host="node-b") == 1
    assert exporter_a.value("django_q_cluster_up", host="node-b") == 1


def _enqueue(env: dict[str, str], count: int) -> None:
    code = ("import django; django.setup()\n"
            "from django_q.tasks import async_task\n"
            f"for i in range({count}): async_task('math.floor', i + 0.5)\n")
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, timeout=60,
                   capture_output=True)


@pytest.mark.parametrize("kind", ["redis", "sqlite", "postgres"])
def test_queue_backlog_grows_then_drains(kind, make_env, procs):
    env = make_env(kind, Q_WORKERS="2")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    _enqueue(env, 25)
    assert exporter.value("django_q_queue_size") == 25
    first = exporter.value("django_q_queue_oldest_task_age_seconds")
    assert first > 0
    wait_for(lambda: exporter.value("django_q_queue_oldest_task_age_seconds") > first + 0.5,
             10, what="oldest task age to grow")
    if kind != "redis":
        assert exporter.value("django_q_queue_in_flight") == 0
    procs.qcluster(env)
    wait_for(lambda: exporter.value("django_q_queue_size") == 0, 60, what="queue drained")
    assert exporter.value("django_q_queue_oldest_task_age_seconds") == 0
    if kind != "redis":
        wait_for(lambda: exporter.value("django_q_queue_in_flight") == 0, 30,
                 what="leases acknowledged")
