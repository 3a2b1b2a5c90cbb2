"""Schedule overdue delay and stuck-cluster detection against a real qcluster."""

from __future__ import annotations

import json
import os
import signal

from tests.procs import wait_for
from tests.test_task_metrics import enqueue, run_py


def test_overdue_schedule_reads_delay_then_zero_after_run(make_env, procs):
    env = make_env("sqlite", Q_WORKERS="1")
    run_py(env, "from django_q.models import Schedule\n"
                "from django.utils import timezone\n"
                "import datetime as dt\n"
                "Schedule.objects.create(name='nightly', func='tests.task_funcs.quick',"
                " args='1', schedule_type=Schedule.HOURLY, repeats=-1,"
                " next_run=timezone.now() - dt.timedelta(seconds=120))\n")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    first = exporter.value("django_q_schedule_next_run_delay_seconds", schedule="nightly")
    assert 119 <= first < 150
    wait_for(lambda: exporter.value("django_q_schedule_next_run_delay_seconds",
                                    schedule="nightly") > first + 0.5, 5, what="delay rising")
    procs.qcluster(env)
    # django-q2's scheduler first runs ~30 s after the cluster starts.
    wait_for(lambda: exporter.value("django_q_schedule_next_run_delay_seconds",
                                    schedule="nightly") == 0, 60, 0.5,
             what="delay 0 after the scheduler ran it")


def _monitor_pid(env) -> int:
    out = run_py(env, "from django_q.status import Stat\n"
                      "import json\n"
                      "print(json.dumps([s.monitor for s in Stat.get_all()]))\n")
    (pid,) = json.loads(out.strip().splitlines()[-1])
    return pid


def test_hung_monitor_fails_readiness_and_recovers(make_env, procs):
    env = make_env("redis", Q_WORKERS="2")
    exporter = procs.exporter(env, "--progress-limit", "3")
    exporter.wait_ready_to_serve()
    procs.qcluster(env)
    wait_for(lambda: exporter.get("/readyz")[0] == 200, 30, what="ready")
    monitor = _monitor_pid(env)
    os.kill(monitor, signal.SIGSTOP)
    try:
        enqueue(env, "tests.task_funcs.quick", [(i,) for i in range(6)])
        wait_for(lambda: exporter.get("/readyz")[:2] == (503, "false"), 20,
                 what="/readyz 503 while the monitor is stopped")
        _, body, _ = exporter.get("/readyz?verbose=1")
        checks = {c["name"]: c for c in json.loads(body)["checks"]}
        assert not checks["progress"]["ok"]
        assert "no task finished" in checks["progress"]["reason"]
        assert checks["status"]["ok"]  # django-q2 still says Working: status alone is blind
        assert exporter.get("/livez")[0] == 200
    finally:
        os.kill(monitor, signal.SIGCONT)
    wait_for(lambda: exporter.get("/readyz")[0] == 200, 20, what="recovery after SIGCONT")
    wait_for(lambda: exporter.value("django_q_tasks_total", func="tests.task_funcs.quick") == 6,
             20, what="the held-back results counted")
