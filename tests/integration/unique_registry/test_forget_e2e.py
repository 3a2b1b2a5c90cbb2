"""A unique task removed from the code leaves /metrics once the configured period has
passed, while a task that keeps running stays; real Redis, qcluster and exporter."""

from __future__ import annotations

import subprocess
import time

from tests.procs import PYTHON, ROOT, wait_for

PERIOD = 8.0
RETIRED = """
import django
django.setup()
from rsr_tasks.unique import unique_task

@unique_task("dq-retired", expiry=5)
def retired():
    return "done"

assert retired() == "done"
"""


def enqueue_sleeper(env) -> None:
    code = ("import django; django.setup()\nfrom django_q.tasks import async_task\n"
            "async_task('tests.unique_jobs.sleeper', 0.05)\n")
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, timeout=60,
                   capture_output=True)


def test_removed_task_leaves_metrics_after_the_period(make_env, procs, tmp_path):
    env = make_env("redis", Q_WORKERS="1", DJANGO_SETTINGS_MODULE="tests.settings_variants",
                   TEST_UNIQUE_FORGET_AFTER=str(PERIOD))
    # A worker of the previous deployment (its own pod, its own pod store) ran a task
    # that the current code no longer has.
    old_pod = {**env, "DJANGO_Q_EXPORTER_POD_STORE": str(tmp_path / "old-pod.sqlite3")}
    subprocess.run([PYTHON, "-c", RETIRED], cwd=ROOT, env=old_pod, check=True, timeout=60,
                   capture_output=True)
    retired_at = time.monotonic()
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    procs.qcluster(env)
    enqueue_sleeper(env)
    wait_for(lambda: exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                                    task="dq-sleeper"), 30, what="the live task's first run")
    assert exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                          task="dq-retired") is not None, "listed before the period ends"

    def retired_gone() -> bool:
        enqueue_sleeper(env)  # the live task keeps running (seen well within the period)
        samples = exporter.samples()
        live = [n for n, labels in samples if ("task", "dq-sleeper") in labels]
        assert "django_q_unique_task_heartbeat_timeout_seconds" in live
        assert "django_q_unique_task_last_success_timestamp_seconds" in live
        return not any(("task", "dq-retired") in labels for _, labels in samples)

    wait_for(retired_gone, PERIOD + 40, 0.5, what="dq-retired to leave /metrics")
    assert time.monotonic() - retired_at > PERIOD - 1, "not before the period"
