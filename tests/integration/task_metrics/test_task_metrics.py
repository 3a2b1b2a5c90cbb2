"""Task execution metrics through a real qcluster with worker recycling and timeouts."""

from __future__ import annotations

import subprocess
import time

from tests.procs import PYTHON, ROOT, enqueue, run_py, wait_for


def test_counts_durations_and_queue_wait_with_recycling(make_env, procs):
    env = make_env("redis", Q_WORKERS="2", Q_RECYCLE="5", Q_TIMEOUT="2", Q_RETRY="10")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    # Enqueued while no cluster runs: these wait at least 2 s in the queue.
    enqueue(env, "tests.task_funcs.quick", [(i,) for i in range(40)])
    time.sleep(2)  # the wait itself is what is measured, not a synchronisation
    cluster = procs.qcluster(env)
    wait_for(lambda: exporter.value("django_q_tasks_total", func="tests.task_funcs.quick") == 40,
             60, what="40 quick tasks counted")
    enqueue(env, "tests.task_funcs.boom", [(i,) for i in range(10)])
    enqueue(env, "tests.task_funcs.slow", [(30,) for _ in range(3)])

    def done():
        return (exporter.value("django_q_tasks_total", func="tests.task_funcs.boom") == 10
                and exporter.value("django_q_tasks_total", func="tests.task_funcs.slow") == 3)

    wait_for(done, 90, 0.5, what="failures and timeouts counted")
    v = exporter.value
    expected = {"quick": (40, 0), "boom": (10, 10), "slow": (3, 3)}
    for name, (total, failed) in expected.items():
        func = f"tests.task_funcs.{name}"
        assert v("django_q_tasks_total", func=func) == total, name
        assert v("django_q_tasks_failed_total", func=func) == failed, name
        assert v("django_q_task_duration_seconds_count", func=func) == total, name
        assert v("django_q_task_queue_wait_seconds_count", func=func) == total, name
        assert v("django_q_task_duration_seconds_bucket", func=func, le="+Inf") == total, name
    # Buckets: quick (sleep 0.05 s) is above 0.025 and well under 1 s; the timeouts
    # ran ~2 s (Q_TIMEOUT) and no longer than 5 s.
    def bucket(name, le):
        return v("django_q_task_duration_seconds_bucket", func=f"tests.task_funcs.{name}", le=le)

    assert (bucket("quick", "0.025"), bucket("quick", "1.0")) == (0, 40)
    assert (bucket("slow", "1.0"), bucket("slow", "5.0")) == (0, 3)
    quick_sum = v("django_q_task_duration_seconds_sum", func="tests.task_funcs.quick")
    assert 40 * 0.05 <= quick_sum < 40 * 0.05 + 2.0, quick_sum
    slow_sum = v("django_q_task_duration_seconds_sum", func="tests.task_funcs.slow")
    assert 3 * 1.9 <= slow_sum < 3 * 3.5, slow_sum  # killed at the 2 s timeout
    # Queue wait: tasks enqueued while the cluster was stopped waited >= 2 s each;
    # the failures, enqueued to a running cluster, waited far less.
    quick_wait = v("django_q_task_queue_wait_seconds_sum", func="tests.task_funcs.quick") / 40
    boom_wait = v("django_q_task_queue_wait_seconds_sum", func="tests.task_funcs.boom") / 10
    assert quick_wait >= 2.0 and boom_wait < quick_wait - 1.0, (quick_wait, boom_wait)
    # 53 tasks on 2 workers recycled every 5 tasks (and 3 timeouts): workers were replaced.
    import socket

    assert v("django_q_cluster_reincarnations_total", host=socket.gethostname()) >= 8
    last = v("django_q_cluster_last_task_finished_timestamp_seconds",
             host=socket.gethostname())
    assert time.time() - 90 < last <= time.time()
    # Counts never go backwards within a process lifetime: a later scrape agrees.
    assert v("django_q_tasks_total", func="tests.task_funcs.quick") == 40
    text = exporter.metrics_text()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    cluster.stop()


def test_func_label_is_capped(make_env, procs):
    """5 000 generated names through django-q2's signals (the receivers the cluster uses),
    from two processes at once like workers and monitor: at most cap values + other."""
    env = make_env("sqlite", DJANGO_Q_EXPORTER_FUNC_CAP="50")
    code = ("import sys\n"
            "from django.utils import timezone\n"
            "from django_q import signals\n"
            "part = int(sys.argv[1])\n"
            "for i in range(part, 5000, 2):\n"
            "    task = {'func': f'generated.f{i}', 'started': timezone.now(),"
            " 'success': i % 2 == 0}\n"
            "    signals.pre_execute.send(sender='django_q', func=None, task=task)\n"
            "    signals.post_execute_in_worker.send(sender='django_q', func=None, task=task)\n"
            "    signals.post_execute.send(sender='django_q', task=task)\n")
    writers = [subprocess.Popen([PYTHON, "-c", "import django; django.setup()\n" + code,
                                 str(part)], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                                text=True) for part in (0, 1)]
    errors = ""
    for w in writers:
        assert w.wait(timeout=120) == 0, w.stderr.read()
        errors += w.stderr.read()
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    samples = exporter.samples()
    for family in ("django_q_tasks_total", "django_q_tasks_failed_total",
                   "django_q_task_duration_seconds_count",
                   "django_q_task_queue_wait_seconds_count"):
        values = {dict(labels)["func"]: v for (name, labels), v in samples.items()
                  if name == family}
        assert len(values) == 51 and "other" in values, (family, len(values))
        assert sum(values.values()) == (2500 if "failed" in family else 5000), (family, errors)
    # the same 50 names in every family: one shared admission, not one per family
    names = {frozenset(dict(labels)["func"] for (n, labels) in samples if n == family)
             for family in ("django_q_tasks_total", "django_q_task_duration_seconds_count")}
    assert len(names) == 1
    assert exporter.value("django_q_tasks_total", func="other") == 4950


def test_unusable_pod_store_never_breaks_a_task(make_env, procs, tmp_path):
    """The store path lies under a regular file (cannot be created, even as root): tasks
    still succeed and the monitor, the only process that writes, logs its failing
    receiver once, not per task; the workers' receivers do no I/O and never fail."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = make_env("sqlite", Q_WORKERS="1", DJANGO_Q_EXPORTER_POD_STORE=str(blocker / "x.db"))
    cluster = procs.qcluster(env)
    enqueue(env, "tests.task_funcs.quick", [(i,) for i in range(4)])
    out = run_py(env, "import time\n"
                      "from django_q.models import Success\n"
                      "deadline = time.monotonic() + 60\n"
                      "while Success.objects.count() < 4 and time.monotonic() < deadline:\n"
                      "    time.sleep(0.2)\n"
                      "print(sorted(Success.objects.values_list('result', flat=True)))\n")
    assert out.strip().splitlines()[-1] == "[0, 1, 2, 3]"
    cluster.stop()
    log = cluster.log_path.read_text()
    assert log.count("task metrics: finished not recorded") == 1, log[-3000:]
    assert "task metrics: started" not in log and "task metrics: executed" not in log


def test_processes_opening_a_new_pod_store_at_once_all_count(tmp_path):
    """Workers and monitor open a fresh store at their first task, nearly at once:
    switching the new file to WAL raced ("database is locked" at once, no busy wait), and
    the first task's metrics were lost. 15 rounds of 4 processes starting together."""
    code = ("import sys, time\n"
            "from djq_contract.podstore import PodStore, Update, labels_of\n"
            "path, start = sys.argv[1], float(sys.argv[2])\n"
            "while time.time() < start: pass\n"
            "store = PodStore(path)\n"
            "store.declare('x', 'counter', 'h')\n"
            "store.apply([Update('x', '_total', labels_of(), 1.0)])\n")
    from djq_contract.podstore import PodStore

    for r in range(15):
        path = str(tmp_path / f"fresh-{r}.sqlite3")
        start = str(time.time() + 0.3)
        procs_ = [subprocess.Popen([PYTHON, "-c", code, path, start], cwd=ROOT,
                                   stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for p in procs_:
            assert p.wait(timeout=60) == 0, p.stderr.read()
        assert PodStore(path).value("x", "_total", {}) == 4, r
