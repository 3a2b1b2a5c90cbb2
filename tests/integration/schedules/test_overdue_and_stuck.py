"""Schedule overdue delay and stuck-cluster detection against a real qcluster."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.procs import enqueue, run_py, wait_for


def test_overdue_schedule_reads_delay_then_zero_after_run(make_env, procs):
    """Also: finished schedules are ignored and the label cap keeps the first ids' names."""
    env = make_env("sqlite", Q_WORKERS="1")
    run_py(env, "from django_q.models import Schedule\n"
                "from django.utils import timezone\n"
                "import datetime as dt\n"
                "now = timezone.now()\n"
                "def make(name, ago, repeats=-1):\n"
                "    Schedule.objects.create(name=name, func='tests.task_funcs.quick', args='1',"
                " schedule_type=Schedule.HOURLY, repeats=repeats,"
                " next_run=now - dt.timedelta(seconds=ago))\n"
                "make('nightly', 120)\n"
                "for i in range(30): make(f'future-{i}', -3600)\n"
                "make('ran-out', 5000, repeats=0)\n"
                "make('late-extra', 300)\n")
    exporter = procs.exporter(env, "--schedule-cap", "10")
    exporter.wait_ready_to_serve()

    def delays():
        return {dict(labels)["schedule"]: v for (name, labels), v in exporter.samples().items()
                if name == "django_q_schedule_next_run_delay_seconds"}

    first = delays()
    assert set(first) == {"nightly", "other"} | {f"future-{i}" for i in range(9)}
    assert 119 <= first["nightly"] < 150, first["nightly"]
    assert first["future-0"] == 0
    assert 299 <= first["other"] < 330  # late-extra, past the cap, still raises "other"
    wait_for(lambda: exporter.value("django_q_schedule_next_run_delay_seconds",
                                    schedule="nightly") > first["nightly"] + 0.5, 5,
             what="delay rising")
    procs.qcluster(env)
    # django-q2's scheduler first runs ~30 s after the cluster starts.
    wait_for(lambda: delays().get("nightly") == 0 and delays().get("other") == 0, 60, 0.5,
             what="delays 0 after the scheduler ran both")
    assert set(delays()) == set(first)  # labels did not move when schedules ran


def _monitor_pid(env) -> int:
    out = run_py(env, "from django_q.status import Stat\n"
                      "import json\n"
                      "print(json.dumps([s.monitor for s in Stat.get_all()]))\n")
    (pid,) = json.loads(out.strip().splitlines()[-1])
    return pid


def test_hung_monitor_fails_readiness_and_recovers(make_env, procs):
    """Work arriving on a long-idle cluster is given the full limit, then a hung monitor
    fails readiness (with the reason), and the cluster recovers after SIGCONT."""
    limit = 5.0
    env = make_env("redis", Q_WORKERS="2")
    exporter = procs.exporter(env, "--progress-limit", str(limit))
    exporter.wait_ready_to_serve()
    procs.qcluster(env)
    wait_for(lambda: exporter.get("/readyz")[0] == 200, 30, what="ready")
    started = exporter.value("django_q_cluster_start_time_seconds")
    # Idle for longer than the limit, no task ever finished: nothing marks progress
    # except the moment work is first seen pending.
    wait_for(lambda: time.time() - started > limit + 1, 20, what="cluster idle past the limit")
    monitor = _monitor_pid(env)
    os.kill(monitor, signal.SIGSTOP)
    try:
        enqueue(env, "tests.task_funcs.quick", [(i,) for i in range(6)])
        first_seen = time.time()
        status, body, _ = exporter.get("/readyz?verbose=1")
        checks = {c["name"]: c for c in json.loads(body)["checks"]}
        assert status == 200 and checks["progress"]["ok"], body
        assert "work pending" in checks["progress"]["reason"]
        wait_for(lambda: exporter.get("/readyz")[:2] == (503, "false"), 20,
                 what="/readyz 503 while the monitor is stopped")
        assert time.time() - first_seen >= limit - 0.5  # not before the limit ran out

        def verbose():
            _, body, _ = exporter.get("/readyz?verbose=1")
            return {c["name"]: c for c in json.loads(body)["checks"]}

        # the six results pile up unsaved in the monitor's queue
        checks = wait_for(lambda: (c := verbose()) and "done_q 6" in c["progress"]["reason"]
                          and c, 10, what="done_q 6 in the reason")
        assert not checks["progress"]["ok"]
        assert "no task finished" in checks["progress"]["reason"]
        assert checks["status"]["ok"]  # django-q2 still says Working: status alone is blind
        assert exporter.get("/livez")[0] == 200
        assert exporter.value("django_q_tasks_total", func="tests.task_funcs.quick") is None
    finally:
        os.kill(monitor, signal.SIGCONT)
    wait_for(lambda: exporter.get("/readyz")[0] == 200, 20, what="recovery after SIGCONT")
    wait_for(lambda: exporter.value("django_q_tasks_total", func="tests.task_funcs.quick") == 6,
             20, what="the held-back results counted")
