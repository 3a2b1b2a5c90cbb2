"""Add the package to a project of one's own, as docs/adoption.md says, from a wheel.

One module-wide stack: a wheel of this repository, installed (not editable) into a
fresh virtualenv with its dependencies from the package index; a small Django
project copied outside the repository (``outside_project/``: its own settings,
django-q2's ORM broker on a throwaway PostgreSQL database, Django's RedisCache on a
private redis-server); ``migrate``, ``qcluster`` and ``manage.py django_q_probettp``
run from that virtualenv with nothing of the repository on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import procs as P
from tests.conftest import PG_ADMIN_URL

PROJECT = Path(__file__).resolve().parent / "outside_project"
CLUSTER = "akvo-rsr"
TASKS = ("refresh-index", "long-report")
#: What the wheel is built from (an sdist's worth); the rest of the tree stays out.
BUILD_IGNORE = shutil.ignore_patterns(".git", ".venv", "node_modules", "tests", "bench",
                                      "tools", "var", "build", "dist", "*.egg-info",
                                      "__pycache__", "*.pyc")


def run(args: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def build_wheel(work: Path) -> Path:
    src = work / "src"
    shutil.copytree(P.ROOT, src, ignore=BUILD_IGNORE)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
         str(src)], 600)
    (wheel,) = (work / "dist").glob("django_q_exporter-*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> None:
    """A venv without the repository's packages; pip from this interpreter installs into
    it (--python), the wheel by path, its dependencies from the index (pip's cache)."""
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], 120)
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "-q", f"{wheel}[postgres]"], 900)


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = get(url + "/metrics")
    assert status == 200, body
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body) for s in fam.samples}


def series(found: dict, name: str, **labels: str) -> list[float]:
    want = set(labels.items())
    return [v for (n, ls), v in found.items() if n == name and want <= set(ls)]


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.python = str(self.venv / "bin" / "python")
        self.project = root / "project"
        self.host_tmp = root / "tmp"
        self.procs: list[Started] = []
        self.timings: dict[str, float] = {}
        self.env: dict[str, str] = {}
        self.url = ""

    def manage(self, *args: str, timeout: float = 120, check: bool = True):
        done = subprocess.run([self.python, "manage.py", *args], cwd=self.project, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"manage.py {args}: {done.stdout}\n{done.stderr}"
        return done

    def start(self, args: list[str], name: str, env: dict[str, str] | None = None) -> Started:
        proc = Started(args, self.project, env or self.env, self.root / f"{name}.log")
        self.procs.append(proc)
        return proc


class Started:
    """A process of the project (cwd: the project directory), output in a log file."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Signal the process group; SIGKILL it if still there after ``timeout``."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    import psycopg

    s = Stack(tmp_path_factory.mktemp("adoption"))
    t0 = time.monotonic()
    wheel = build_wheel(s.root)
    s.timings["wheel"] = time.monotonic() - t0
    t0 = time.monotonic()
    install(wheel, s.venv)
    s.timings["venv + install"] = time.monotonic() - t0
    print(f"\nadoption: wheel built in {s.timings['wheel']:.1f} s, venv + pip install "
          f"in {s.timings['venv + install']:.1f} s")

    shutil.copytree(PROJECT, s.project, ignore=shutil.ignore_patterns("__pycache__"))
    s.host_tmp.mkdir()
    db = f"dqe_adopt_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    redis = P.RedisServer(s.root / "redis").start()
    admin = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_URL)
    port = P.free_port()
    # Only what a container would set: no PYTHONPATH, no DJANGO_SETTINGS_MODULE.
    s.env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
             "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "TMPDIR": str(s.host_tmp),
             "SECRET_KEY": "outside-project-secret", "DB_NAME": db,
             "DB_HOST": admin.get("host", "127.0.0.1"), "DB_PORT": str(admin.get("port", 5432)),
             "DB_USER": admin.get("user", "postgres"), "REDIS_URL": redis.url,
             "DJANGO_Q_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    s.url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        s.manage("migrate", "--noinput", "-v", "0")
        # Two schedules due now; one more run of the long job enqueued first: it runs as
        # soon as the cluster starts and holds the lock for 150 s, past the scheduler's
        # first pass (~30 s after the start in django-q2) and its next minute.
        s.manage("shell", "-c", (
            "from django.utils import timezone\n"
            "from django_q.models import Schedule\n"
            "from django_q.tasks import async_task\n"
            "async_task('mysite.jobs.long_report', 150)\n"
            "for name, func in (('refresh-index', 'mysite.jobs.refresh_index'),\n"
            "                   ('long-report', 'mysite.jobs.long_report')):\n"
            "    Schedule.objects.create(name=name, func=func, schedule_type=Schedule.MINUTES,\n"
            "                            minutes=1, repeats=-1, next_run=timezone.now())\n"))
        s.timings["migrate + schedules"] = time.monotonic() - t0
        s.start([s.python, "manage.py", "django_q_probettp"], "probettp")
        s.cluster = s.start([s.python, "manage.py", "qcluster"], "qcluster")
        s.cluster_started = time.monotonic()
        yield s
    finally:
        for proc in reversed(s.procs):
            # Throwaway processes: the long job would hold a graceful stop for a minute.
            proc.stop(signal.SIGKILL)
        redis.stop()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def test_runs_the_installed_package_with_the_projects_settings(stack):
    code = ("import json, sys, django; django.setup()\n"
            "import exporter, rsr_tasks\n"
            "from django.conf import settings\n"
            "print(json.dumps({'exporter': exporter.__file__, 'rsr_tasks': rsr_tasks.__file__,\n"
            "  'settings': settings.SETTINGS_MODULE, 'path': sys.path,\n"
            "  'demo': sorted(m for m in sys.modules if m.startswith('rsr_tasks.demo'))}))\n")
    env = dict(stack.env, DJANGO_SETTINGS_MODULE="mysite.settings")
    out = json.loads(run([stack.python, "-c", code], 60, cwd=stack.project, env=env).stdout)
    site = str(stack.venv / "lib")
    assert out["exporter"].startswith(site) and out["rsr_tasks"].startswith(site), out
    assert out["settings"] == "mysite.settings"
    assert out["demo"] == []
    assert not [p for p in out["path"] if p and Path(p).resolve().is_relative_to(P.ROOT)], out
    # The demo command ships with the app, but refuses to touch this project.
    demo = stack.manage("demo", "--duration", "1", check=False)
    assert demo.returncode != 0 and "rsr_tasks.demo.settings" in demo.stderr, demo.stderr


def test_probes_answer_through_the_probe_server_and_the_packaged_scripts(stack):
    P.wait_for(lambda: get(stack.url + "/healthz", 2) == (200, "true"), 60, 0.2,
               what="/healthz 200 from manage.py django_q_probettp")
    assert get(stack.url + "/livez", 2)[0] == 200
    log = stack.procs[0].output()
    assert f"cluster '{CLUSTER}'" in log and str(stack.host_tmp) in log, log
    share = stack.venv / "share" / "django-q-exporter"
    probe_env = dict(stack.env, PROBE_PORT=stack.url.rsplit(":", 1)[1])
    run(["sh", str(share / "worker.sh")], 30, env=probe_env)
    run([str(stack.venv / "bin" / "django-q-exporter"), "check", stack.url + "/healthz"], 30,
        env=stack.env)
    assert os.access(share / "entrypoint.sh", os.X_OK)


def test_metrics_show_the_cluster_and_every_collector_working(stack):
    def cluster_with_two_workers():
        found = samples(stack.url)
        return (series(found, "django_q_cluster_up", cluster_name=CLUSTER) == [1.0]
                and series(found, "django_q_cluster_workers", cluster_name=CLUSTER) == [2.0]
                and found)

    found = P.wait_for(cluster_with_two_workers, 60, 0.2, what="akvo-rsr up with 2 workers")
    assert series(found, "django_q_broker_up") == [1.0]
    collectors = {dict(ls)["collector"]: v for (n, ls), v in found.items()
                  if n == "django_q_exporter_collector_success"}
    assert len(collectors) >= 5 and set(collectors.values()) == {1.0}, collectors
    assert not series(found, "django_q_cluster_up", cluster_name="rsr")  # the demo's name


def test_unique_tasks_on_their_schedules(stack):
    # Registered before any scheduled run: at worker spawn, from the Schedule rows.
    def registered():
        found = samples(stack.url)
        return all(series(found, "django_q_unique_task_heartbeat_timeout_seconds", task=t)
                   for t in TASKS) and found

    found = P.wait_for(registered, 60, 0.2, what="both unique tasks registered")
    assert series(found, "django_q_unique_task_heartbeat_timeout_seconds",
                  task="long-report") == [15.0]

    def scheduled_runs_done():
        found = samples(stack.url)
        return ((series(found, "django_q_unique_task_lock_contended_total",
                        task="long-report") or [0])[0] >= 1
                and series(found, "django_q_unique_task_last_success_timestamp_seconds",
                           task="refresh-index")
                and series(found, "django_q_tasks_total", func="mysite.jobs.refresh_index")
                # The skipped run is counted as contended by its worker at once, and as a
                # finished task by the monitor a moment later, when it saves the result.
                and series(found, "django_q_tasks_total", func="mysite.jobs.long_report")
                and found)

    # django-q2's scheduler first runs ~30 s after the cluster starts.
    left = 120 - (time.monotonic() - stack.cluster_started)
    found = P.wait_for(scheduled_runs_done, max(left, 30), 0.5,
                       what="the scheduler's runs: refresh-index done, long-report skipped")
    # The long run still holds its lock: running and beating. Counts are "at least":
    # on a slow day the scheduler's next minute may have come too.
    assert series(found, "django_q_unique_task_running", task="long-report") == [1.0]
    (age,) = series(found, "django_q_unique_task_heartbeat_age_seconds", task="long-report")
    assert 0 <= age < 15
    assert series(found, "django_q_unique_task_lock_acquired_total", task="long-report") == [1.0]
    assert series(found, "django_q_unique_task_lock_acquired_total", task="refresh-index")[0] >= 1
    # The skipped run finished (with its Skipped marker): a task of its own.
    assert series(found, "django_q_tasks_total", func="mysite.jobs.long_report")[0] >= 1
    schedules = {dict(ls)["schedule"] for (n, ls), _ in found.items()
                 if n == "django_q_schedule_next_run_delay_seconds"}
    assert schedules == set(TASKS)
    # Workers and the probe server found the same per-project pod store by themselves.
    (store,) = (stack.host_tmp / "django-q-exporter").glob("*.sqlite3")
    assert store.name.startswith(f"pod-metrics-{CLUSTER}-")


def test_console_script_serves_from_the_project_directory(stack):
    """``django-q-exporter serve`` finds the project in its working directory, as
    ``python -m exporter`` and ``manage.py`` do (a console script alone would not)."""
    port = P.free_port()
    env = dict(stack.env, DJANGO_Q_EXPORTER_LISTEN_ADDRESS=f"127.0.0.1:{port}")
    server = stack.start([str(stack.venv / "bin" / "django-q-exporter"), "serve",
                          "--django-settings", "mysite.settings"], "console-serve", env)
    url = f"http://127.0.0.1:{port}"
    P.wait_for(lambda: get(url + "/healthz", 2) == (200, "true"), 60, 0.2,
               what="/healthz 200 from the django-q-exporter console script")
    found = samples(url)
    assert series(found, "django_q_unique_task_lock_acquired_total", task="long-report")
    assert server.stop() == 0, server.output()
    stack.procs.remove(server)
