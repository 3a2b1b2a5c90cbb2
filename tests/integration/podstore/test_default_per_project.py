"""Two projects (and two clusters) on one host keep their task counters apart.

No ``DJANGO_Q_EXPORTER_POD_STORE`` anywhere: workers and exporters find the pod
store from the settings module and the cluster name, under a TMPDIR that all of
them share, as processes of one host do.
"""

from __future__ import annotations

import subprocess

from tests.procs import PYTHON, ROOT, wait_for

FUNC = "tests.task_funcs.quick"


def enqueue(env: dict[str, str], count: int) -> None:
    code = ("import django; django.setup()\n"
            "from django_q.tasks import async_task\n"
            f"for i in range({count}): async_task({FUNC!r}, i)\n")
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_projects_and_clusters_on_one_host_count_only_their_own_tasks(make_env, procs,
                                                                       tmp_path):
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir()
    projects = {
        # same cluster name, different settings modules (and databases): two projects
        "demo/shared": ("rsr_tasks.demo.settings", "shared", 3),
        "variants/shared": ("tests.settings_variants", "shared", 5),
        # same settings module, another cluster name: a second cluster
        "demo/other": ("rsr_tasks.demo.settings", "other", 7),
    }
    envs = {}
    for key, (module, name, count) in projects.items():
        env = make_env("sqlite", DJANGO_Q_NAME=name, DJANGO_SETTINGS_MODULE=module,
                       TMPDIR=str(host_tmp), Q_WORKERS="1")
        env.pop("DJANGO_Q_EXPORTER_POD_STORE")
        enqueue(env, count)
        envs[key] = env
    exporters = {key: procs.exporter(env, name=key.replace("/", "-"))
                 for key, env in envs.items()}
    for key, env in envs.items():
        procs.qcluster(env, name=f"qcluster-{key.replace('/', '-')}")

    def counted(key: str) -> float | None:
        return exporters[key].value("django_q_tasks_total", func=FUNC)

    for key, (_, _, count) in projects.items():
        exporters[key].wait_ready_to_serve()
        wait_for(lambda key=key, count=count: (counted(key) or 0) >= count, 90, 0.2,
                 what=f"{key}: {count} tasks counted")
    # Every task of every project has finished now: a shared store would show the sum.
    assert {key: counted(key) for key in projects} == \
        {key: float(count) for key, (_, _, count) in projects.items()}
    stores = sorted(p.name for p in (host_tmp / "django-q-exporter").glob("*.sqlite3"))
    assert len(stores) == 3, stores
    assert sum(name.startswith("pod-metrics-shared-") for name in stores) == 2, stores
