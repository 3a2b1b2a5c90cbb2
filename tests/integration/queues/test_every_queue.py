"""Every queue: two clusters under one name consume two queues (the second started
with ``Q_CLUSTER_NAME=long``, on another host); tasks enqueued to each move that
queue's size and oldest-task age, and its own cluster drains it. Redis and PostgreSQL."""

from __future__ import annotations

import pytest

from tests import procs as P
from tests.procs import run_py

TASKS = 4
NAP = 2.0


def queue_values(exporter) -> dict[str, tuple[float, float]]:
    """queue -> (size, oldest-task age) from one scrape."""
    samples = exporter.samples()
    out: dict[str, list[float]] = {}
    for (name, labels), value in samples.items():
        if name in ("django_q_queue_size", "django_q_queue_oldest_task_age_seconds"):
            slot = 0 if name == "django_q_queue_size" else 1
            out.setdefault(dict(labels)["queue"], [0.0, 0.0])[slot] = value
    return {k: (v[0], v[1]) for k, v in out.items()}


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_two_queues_two_clusters_one_name(kind, make_env, procs):
    env = make_env(kind, DJANGO_SETTINGS_MODULE="tests.settings_variants",
                   TEST_Q_ALT_CLUSTERS="long", Q_WORKERS="1")
    own = env["DJANGO_Q_NAME"]
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    procs.qcluster(env)
    procs.qcluster(dict(env, Q_CLUSTER_NAME="long"), hostname="longhost", name="long")

    def both_up():
        ups = {dict(ls)["host"]: v for (n, ls), v in exporter.samples().items()
               if n == "django_q_cluster_up" and dict(ls)["cluster_name"] == own}
        return len(ups) == 2 and "longhost" in ups and all(v == 1 for v in ups.values())

    P.wait_for(both_up, 60, 0.2, "both clusters up")
    if kind == "redis":  # the consuming cluster lists its queue before it holds a task
        P.wait_for(lambda: queue_values(exporter).get("long") == (0, 0), 10, 0.2,
                   "queue 'long' reported empty")
    run_py(env, "from django_q.tasks import async_task\n"
                f"for _ in range({TASKS}):\n"
                f"    async_task('tests.task_funcs.nap', {NAP})\n"
                f"    async_task('tests.task_funcs.nap', {NAP}, cluster='long')\n")
    moved: set[str] = set()
    max_in_flight = {own: 0.0, "long": 0.0}

    def both_moved():
        for queue, (size, age) in queue_values(exporter).items():
            if size >= 1 and age >= 1.0:
                moved.add(queue)
        if kind == "postgres":
            for queue in max_in_flight:
                flight = exporter.value("django_q_queue_in_flight", queue=queue) or 0
                max_in_flight[queue] = max(max_in_flight[queue], flight)
        return {own, "long"} <= moved

    P.wait_for(both_moved, 30, 0.2, f"size and age of both queues to rise (moved: {moved})")

    def both_drained():
        values = queue_values(exporter)
        return values.get(own) == (0, 0) and values.get("long") == (0, 0)

    # Each queue drains only if its own cluster consumes it.
    P.wait_for(both_drained, 60, 0.3, "both queues drained by their clusters")
    if kind == "postgres":  # leased rows are in flight until acknowledged
        assert max_in_flight["long"] >= 1 and max_in_flight[own] >= 1, max_in_flight
        # On the ORM a queue without rows (other than our own) leaves the metrics.
        P.wait_for(lambda: not exporter.value("django_q_queue_in_flight", queue="long")
                   and exporter.value("django_q_queue_in_flight", queue=own) == 0, 30, 0.3,
                   "nothing in flight")
