"""The image, built for real and run the way k8s/deployment.yaml runs it.

uid 10001, a read-only root file system with a writable /tmp and the pod store on a
volume, all capabilities dropped, IS_WORKER=1; against a private redis-server and a
throwaway PostgreSQL database on loopback (the host network). The container's
healthcheck is k8s/worker.sh, as in the compose file and the readiness probe.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from tests import procs as P
from tests.conftest import PG_ADMIN_URL

# A cold machine builds the base images first (minutes, see docs/deployment.md): the
# module's first test carries that fixture set-up.
pytestmark = pytest.mark.timeout(1800)
UID = "10001"
POD_STORE_DIR = "/var/run/django-q-exporter"
# Grace period of the deployment (and the compose file): SIGKILL only after that.
DEPLOYMENT = yaml.safe_load((P.ROOT / "k8s" / "deployment.yaml").read_text())
POD = DEPLOYMENT["spec"]["template"]["spec"]
GRACE = POD["terminationGracePeriodSeconds"]
CONTAINER_ENV = {e["name"]: e.get("value") for e in POD["containers"][0]["env"]}


def run_flags(tmp_path, name: str, **env: str) -> list[str]:
    """podman run flags of a container as the Deployment's securityContext runs it."""
    store = tmp_path / f"{name}-pod-store"
    store.mkdir()
    os.chown(store, int(UID), int(UID))  # an emptyDir writable through fsGroup 10001
    flags = ["--name", name, "--network", "host", "--ulimit", "host",
             "--user", f"{UID}:{UID}", "--read-only", "--read-only-tmpfs=false",
             "--tmpfs", "/tmp:rw,mode=1777", "--volume", f"{store}:{POD_STORE_DIR}",
             "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    for key, value in env.items():
        flags += ["--env", f"{key}={value}"]
    return flags


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    """A private redis-server and a throwaway database of their own (the containers'
    cluster keeps the demo's cluster name, so it shares no database with other tests)."""
    import psycopg

    name = f"dqe_containers_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    redis = P.RedisServer(tmp_path_factory.mktemp("container-redis")).start()
    yield {"REDIS_URL": redis.url, "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
           "DJANGO_SETTINGS_MODULE": CONTAINER_ENV["DJANGO_SETTINGS_MODULE"],
           "DJANGO_SECRET_KEY": uuid.uuid4().hex}
    redis.stop()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def migrated(podman, app_image, backends, tmp_path_factory):
    """The compose file's ``migrate`` service, run with the image."""
    compose = yaml.safe_load((P.ROOT / "docker-compose.yml").read_text())
    entrypoint = compose["services"]["migrate"]["entrypoint"]
    name = f"djq-migrate-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("migrate")
    result = podman.run("run", "--rm", *run_flags(tmp, name, **backends),
                        "--entrypoint", json.dumps(entrypoint), app_image, timeout=300,
                        check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return backends


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
def worker(podman, app_image, migrated, tmp_path_factory, figures):
    """The worker container, started and waited for until its healthcheck passes."""
    port = P.free_port()
    name = f"djq-worker-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("worker")
    env = {**migrated, "IS_WORKER": CONTAINER_ENV["IS_WORKER"],
           "DJANGO_Q_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
           "DJANGO_Q_EXPORTER_POD_STORE": CONTAINER_ENV["DJANGO_Q_EXPORTER_POD_STORE"]}
    assert CONTAINER_ENV["DJANGO_Q_EXPORTER_POD_STORE"].startswith(POD_STORE_DIR + "/")
    t0 = time.monotonic()
    podman.run("run", "--detach", *run_flags(tmp, name, **env),
               "--health-cmd", json.dumps(["/app/k8s/worker.sh"]),
               "--health-interval", "disable", app_image)
    try:
        def healthy() -> bool:
            state = podman.inspect(name)["State"]
            assert state["Status"] == "running", podman.logs(name)
            return podman.healthcheck(name)

        P.wait_for(healthy, 120, 0.5, what="the worker container's healthcheck")
        figures.record("worker_start_to_healthy_seconds", time.monotonic() - t0)
        yield name, f"http://127.0.0.1:{port}"
    finally:
        podman.remove(name)


def test_worker_container_turns_healthy_and_is_scraped_from_the_host(podman, worker):
    name, url = worker
    status, body = get(f"{url}/healthz")
    assert (status, body.strip()) == (200, "true")
    # Runs as the Deployment's uid, and the root file system really is read-only.
    assert set(podman.run("top", name, "huser").stdout.split()[1:]) == {UID}
    touch = podman.run("exec", name, "touch", "/app/written", check=False)
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr
    # A task run by the cluster is counted through the pod store on its volume.
    podman.run("exec", name, "python", "-c",
               "import django; django.setup(); from django_q.tasks import async_task; "
               "async_task('math.floor', 1.5)")

    def scraped() -> str | None:
        status, text = get(f"{url}/metrics")
        assert status == 200
        done = re.search(r'^django_q_tasks_total\{func="math\.floor"\} (\S+)$', text, re.M)
        return text if done and float(done.group(1)) >= 1 else None

    text = P.wait_for(scraped, 60, 0.5, what="the task counted in /metrics")
    assert re.search(r"^django_q_cluster_up\{[^}]*\} 1\.0$", text, re.M), text
    assert re.search(r'^django_q_broker_up\{broker="redis"\} 1\.0$', text, re.M), text


def test_worker_container_stops_cleanly_on_sigterm(podman, worker, figures):
    """podman stop sends SIGTERM (to tini, which forwards it to entrypoint.sh): the
    container exits with qcluster's status well within the grace period, and every one
    of its processes is gone."""
    name, _url = worker
    pids = podman.host_pids(name)
    assert len(pids) >= 4, pids  # tini, entrypoint.sh, probe server, qcluster (+ workers)
    t0 = time.monotonic()
    podman.run("stop", "--time", str(GRACE), name, timeout=GRACE + 60)
    elapsed = time.monotonic() - t0
    figures.record("worker_stop_seconds", elapsed)
    state = podman.inspect(name)["State"]
    logs = podman.logs(name)
    reported = re.findall(r"entrypoint\.sh: qcluster exited with status (\d+)", logs)
    assert reported, logs  # the script saw qcluster end (not a SIGKILL of everything)
    assert state["ExitCode"] == int(reported[-1]) == 0, logs
    assert elapsed < 60, f"took {elapsed:.1f}s to stop (grace {GRACE}s)"
    alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
    assert alive == [], f"processes left after the stop: {alive}"


def test_web_container_serves_django(podman, app_image, migrated, tmp_path):
    """The image's default command (gunicorn), bound to a free loopback port because the
    container shares the host's network here."""
    port = P.free_port()
    name = f"djq-web-{uuid.uuid4().hex[:8]}"
    config = podman.inspect(app_image)["Config"]
    cmd = config["Cmd"]
    assert cmd[:2] == ["gunicorn", "--bind"]
    cmd = [*cmd[:2], f"127.0.0.1:{port}", *cmd[3:]]
    podman.run("run", "--detach", *run_flags(tmp_path, name, **migrated), app_image, *cmd)
    try:
        def answered():
            assert podman.inspect(name)["State"]["Status"] == "running", podman.logs(name)
            return get(f"http://127.0.0.1:{port}/")

        status, body = P.wait_for(answered, 60, 0.3, what="gunicorn to answer")
        # The demo project routes no URL: Django's own 404 shows the whole stack ran.
        assert status == 404 and "Not Found" in body, body
    finally:
        podman.remove(name)
