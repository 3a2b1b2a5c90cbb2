"""@unique_task through a real qcluster: no overlap, visible skips, timeouts, registry."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

from tests.procs import PYTHON, ROOT, wait_for


def _run(env, code: str) -> str:
    done = subprocess.run([PYTHON, "-c", "import django; django.setup()\n" + code], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fifty_enqueues_on_four_workers(make_env, procs, redis_server):
    env = make_env("redis", Q_WORKERS="4")
    detector = f"det-{uuid.uuid4().hex[:8]}"
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    _run(env, "from django_q.tasks import async_task\n"
              "for _ in range(50):\n"
              f"    async_task('tests.unique_jobs.overlap_job', {detector!r}, 0.3)\n")
    procs.qcluster(env)
    r = redis_server.client()

    def finished():
        return _run(env, "from django_q.models import Task\n"
                         "print(Task.objects.filter(func='tests.unique_jobs.overlap_job').count())"
                    ).strip() == "50"

    wait_for(finished, 90, 0.5, what="50 results saved")
    assert int(r.get(f"{detector}:overlaps") or 0) == 0
    runs = int(r.get(f"{detector}:runs") or 0)
    results = _run(env, "from django_q.models import Task\n"
                        "from rsr_tasks.unique import Skipped\n"
                        "ts = Task.objects.filter(func='tests.unique_jobs.overlap_job')\n"
                        "print(sum(isinstance(t.result, Skipped) for t in ts), "
                        "sum(t.result == 'worked' for t in ts))").split()
    skipped, worked = int(results[0]), int(results[1])
    assert worked == runs and skipped + worked == 50
    assert skipped > 0 and worked > 0
    wait_for(lambda: exporter.value("django_q_unique_task_lock_contended_total",
                                    task="dq-overlap") == skipped, 10, what="contended count")
    assert exporter.value("django_q_unique_task_lock_acquired_total", task="dq-overlap") == worked


def test_worker_killed_by_django_q_timeout_frees_lock(make_env, procs):
    """django-q2 raises TimeoutException in the task at Q_TIMEOUT, then destroys the
    worker: the wrapper's cleanup still runs, so the lock is released at once (no wait
    for the expiry), the run is recorded as failed, and the next run acquires."""
    env = make_env("redis", Q_WORKERS="1", Q_TIMEOUT="2", Q_RETRY="5")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    procs.qcluster(env)
    _run(env, "from django_q.tasks import async_task\n"
              "async_task('tests.unique_jobs.sleeper', 30)\n")
    wait_for(lambda: exporter.value("django_q_unique_task_running", task="dq-sleeper") == 1,
             30, what="sleeper running")
    wait_for(lambda: exporter.value("django_q_unique_task_running", task="dq-sleeper") == 0,
             15, what="timed-out run finished")
    duration = exporter.value("django_q_unique_task_last_duration_seconds", task="dq-sleeper")
    assert 1.5 < duration < 5
    assert exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                          task="dq-sleeper") is None
    _run(env, "from django_q.tasks import async_task\n"
              "async_task('tests.unique_jobs.sleeper', 0.1)\n")
    wait_for(lambda: exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                                    task="dq-sleeper") is not None, 30,
             what="second run succeeded")
    assert exporter.value("django_q_unique_task_lock_acquired_total", task="dq-sleeper") == 2
    assert exporter.value("django_q_unique_task_lock_contended_total", task="dq-sleeper") == 0


def test_scheduled_unique_task_registered_before_first_run(make_env, procs):
    env = make_env("redis", Q_WORKERS="1")
    _run(env, "from django_q.models import Schedule\n"
              "from django.utils import timezone\n"
              "import datetime as dt\n"
              "Schedule.objects.create(name='later', func='rsr_tasks.demo.jobs.send_digest',"
              " schedule_type=Schedule.HOURLY,"
              " next_run=timezone.now() + dt.timedelta(hours=1))\n")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert exporter.value("django_q_unique_task_running", task="send-digest") is None
    procs.qcluster(env)
    wait_for(lambda: exporter.value("django_q_unique_task_running", task="send-digest") == 0,
             30, what="send-digest registered by the worker at spawn")
    assert exporter.value("django_q_unique_task_heartbeat_timeout_seconds",
                          task="send-digest") == 30
    assert exporter.value("django_q_unique_task_lock_acquired_total", task="send-digest") == 0
    assert exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                          task="send-digest") is None


def test_worker_killed_by_the_guard_frees_lock_within_one_expiry(make_env, procs,
                                                                 redis_server):
    """A run that ignores django-q's timeout is ended by the sentinel's guard killing
    the worker (no cleanup runs): the lock expires by itself within one expiry of the
    worker's death, and the next run acquires (taking over the unfinished record)."""
    env = make_env("redis", Q_WORKERS="1", Q_TIMEOUT="1", Q_RETRY="60")
    cluster = procs.qcluster(env)
    r = redis_server.client()
    prefix = f"django_q_exporter:{env['DJANGO_Q_NAME']}:unique:dq-stubborn"
    _run(env, "from django_q.tasks import async_task\n"
              "async_task('tests.unique_jobs.stubborn', 60)\n")

    def holder_pid():
        record = json.loads(r.get(f"{prefix}:state") or "{}")
        return record.get("pid") if record.get("token") else None

    pid = wait_for(holder_pid, 30, 0.05, what="stubborn run holding the lock")

    def dead():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    wait_for(dead, 30, 0.02, what="the guard to kill the worker")
    died_at = time.monotonic()
    assert r.exists(f"{prefix}:lock"), "nothing released the lock: the worker was killed"
    wait_for(lambda: not r.exists(f"{prefix}:lock"), 2 + 1, 0.02, what="lock expiry")
    assert time.monotonic() - died_at <= 2 + 0.5
    assert holder_pid() == pid, "the killed run's record stays until the next run"
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert exporter.value("django_q_unique_task_running", task="dq-stubborn") == 1
    _run(env, "from django_q.tasks import async_task\n"
              "async_task('tests.unique_jobs.stubborn', 0.1)\n")
    wait_for(lambda: exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                                    task="dq-stubborn") is not None, 30,
             what="the next run succeeded")
    assert exporter.value("django_q_unique_task_running", task="dq-stubborn") == 0
    assert exporter.value("django_q_unique_task_lock_acquired_total", task="dq-stubborn") == 2
    assert exporter.value("django_q_unique_task_lock_lost_total", task="dq-stubborn") == 0
    assert "unique task dq-stubborn: took over from" in cluster.output()
    assert f":{pid}, whose run never finished" in cluster.output()
