"""Probes, exposition and the worker probe script against a real cluster.

One cluster serves several assertions; each test starts its own processes.
Deadlines after a SIGKILL: /healthz 503 within 3 s (the local sentinel's pid
vanishes, no Stat expiry wait), django_q_cluster_up 0 within 12 s (Stat TTL 3 s
+ stat grace 5 s + margin).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from tests.procs import PYTHON, ROOT, Exporter, Proc, free_port, wait_for

HOST = socket.gethostname()
WORKER_SH = ROOT / "k8s" / "worker.sh"


def _run_worker_sh(port: int | None, path: str = "/healthz", timeout: str = "2",
                   **env: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PROBE_PATH": path, "PROBE_TIMEOUT": timeout, **env}
    if port is not None:
        env["PROBE_PORT"] = str(port)
    return subprocess.run(["sh", str(WORKER_SH)], capture_output=True, text=True, timeout=30,
                          env=env)


def _check(url: str | None, timeout: str = "2", **env: str) -> subprocess.CompletedProcess:
    args = [PYTHON, "-m", "exporter", "check", "--timeout", timeout] + ([url] if url else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=30, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env})


def _start(make_env, procs, kind: str):
    env = make_env(kind, Q_WORKERS="2")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    cluster = procs.qcluster(env)
    wait_for(lambda: exporter.value("django_q_cluster_up", host=HOST) == 1, 30,
             what="cluster_up 1")
    wait_for(lambda: exporter.get("/healthz")[:2] == (200, "true"), 10, what="/healthz 200")
    return env, exporter, cluster


@pytest.fixture
def running(make_env, procs):
    return _start(make_env, procs, "redis")


def test_healthy_cluster_probes_and_metrics(running, tmp_path):
    env, exporter, cluster = running
    assert exporter.value("django_q_cluster_workers", host=HOST) == 2
    assert exporter.value("django_q_cluster_status", host=HOST, status="idle") == 1
    assert exporter.get("/livez")[:2] == (200, "true")
    assert exporter.get("/readyz")[:2] == (200, "true")
    status, body, headers = exporter.get("/healthz?verbose=1")
    report = json.loads(body)
    assert status == 200 and report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {"broker", "cluster_seen", "status",
                                                     "workers", "sentinel_process"}
    assert all(c["ok"] for c in report["checks"])

    # The whole exposition passes promtool's linter.
    text = exporter.metrics_text()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    # OpenMetrics when asked for it, valid for prometheus_client's strict parser.
    status, om, headers = exporter.get("/metrics", headers={
        "Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(om)}
    up = [s for s in families["django_q_cluster_up"].samples if s.labels["host"] == HOST]
    assert [s.value for s in up] == [1]
    assert families["django_q_cluster_reincarnations"].type == "counter"
    # Plain Prometheus text without the Accept header.
    assert exporter.get("/metrics")[2]["Content-Type"].startswith("text/plain; version=0.0.4")

    # The status page lists the cluster (its JSON form: the page's own tests drive a browser).
    status, page, headers = exporter.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    clusters = json.loads(exporter.get("/status.json")[1])["clusters"]["rows"]
    assert [(c["host"], c["up"]) for c in clusters] == [(HOST, True)]

    # worker.sh and `python -m exporter check` agree with the server.
    ok = _run_worker_sh(exporter.port)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""
    assert _check(exporter.url + "/healthz").returncode == 0
    # Without PROBE_PORT both take the port from the exporter's listen address.
    listen = {"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": f"0.0.0.0:{exporter.port}"}
    assert _run_worker_sh(None, **listen).returncode == 0
    assert _check(None, **listen).returncode == 0
    missing = _run_worker_sh(exporter.port, "/nope")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr

    # The management command the original deployment calls serves the same answers
    # and stops as fast.
    command = _ArgsExporter([PYTHON, "manage.py", "django_q_probettp"], env,
                            tmp_path / "django_q_probettp.log")
    try:
        command.wait_ready_to_serve()
        wait_for(lambda: command.get("/healthz")[:2] == (200, "true"), 10,
                 what="django_q_probettp /healthz 200")
        assert command.value("django_q_cluster_workers", host=HOST) == 2
        t0 = time.monotonic()
        command.signal(signal.SIGTERM)
        assert command.proc.wait(5) == 0
        assert time.monotonic() - t0 < 1.0
    finally:
        command.stop()


@pytest.mark.parametrize("kind", ["redis", "sqlite", "postgres"])
def test_sigkill_of_whole_cluster_turns_probes_red(kind, make_env, procs):
    """SIGKILL to the qcluster process group (main, sentinel, workers, monitor, pusher):
    nothing gets to save a Stopping Stat."""
    env, exporter, cluster = _start(make_env, procs, kind)
    t0 = time.monotonic()
    cluster.signal_group(signal.SIGKILL)
    # The local sentinel pid vanishing fails readiness at once (no Stat expiry wait);
    # metrics read down once the Stat expired (3 s) and the grace (5 s) passed.
    wait_for(lambda: exporter.get("/healthz")[:2] == (503, "false"), 3, 0.05,
             what="/healthz 503 after SIGKILL")
    assert exporter.get("/livez")[0] == 503
    wait_for(lambda: exporter.value("django_q_cluster_up", host=HOST) == 0, 12,
             what="cluster_up 0 after SIGKILL")
    assert time.monotonic() - t0 < 15
    assert exporter.value("django_q_cluster_workers", host=HOST) == 0
    failed = _run_worker_sh(exporter.port)
    assert failed.returncode == 1
    assert failed.stderr == f"worker.sh: {exporter.url}/healthz answered HTTP 503\n"
    checked = _check(exporter.url + "/healthz")
    assert checked.returncode == 1
    assert checked.stderr == f"check: {exporter.url}/healthz answered HTTP 503\n"


def test_sigkill_of_sentinel_only_fails_liveness(running):
    """A SIGKILLed sentinel leaves orphaned workers: liveness must still fail."""
    env, exporter, cluster = running
    # qcluster's main process has exactly one child: the sentinel.
    children = Path(f"/proc/{cluster.pid}/task/{cluster.pid}/children").read_text().split()
    assert len(children) == 1, children
    sentinel = int(children[0])
    os.kill(sentinel, signal.SIGKILL)
    wait_for(lambda: exporter.get("/livez")[0] == 503, 5, 0.05, what="/livez 503")
    _, body, _ = exporter.get("/livez?verbose=1")
    reasons = {c["name"]: c["reason"] for c in json.loads(body)["checks"]}
    assert f"sentinel process {sentinel}" in reasons["sentinel_process"]
    assert exporter.get("/healthz")[0] == 503


def test_worker_sh_fails_fast_when_nothing_listens_or_answers():
    lint = subprocess.run(["shellcheck", str(WORKER_SH), str(ROOT / "k8s" / "entrypoint.sh")],
                          capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout
    port = free_port()
    t0 = time.monotonic()
    result = _run_worker_sh(port)
    elapsed = time.monotonic() - t0
    assert result.returncode == 1
    assert "connection refused" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert elapsed < 5, f"worker.sh took {elapsed:.1f}s against a closed port"
    check = _check(f"http://127.0.0.1:{port}/healthz")
    assert check.returncode == 1 and "unreachable" in check.stderr

    # A listener that never answers (accepts via the kernel backlog, then silence):
    # both give up after their timeout instead of hanging the kubelet.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        port = mute.getsockname()[1]
        t0 = time.monotonic()
        result = _run_worker_sh(port, timeout="1")
        elapsed = time.monotonic() - t0
        assert result.returncode == 1 and "no answer within 1s" in result.stderr
        assert elapsed < 5, f"worker.sh took {elapsed:.1f}s against a mute listener"
        t0 = time.monotonic()
        check = _check(f"http://127.0.0.1:{port}/healthz", timeout="1")
        elapsed = time.monotonic() - t0
        assert check.returncode == 1 and "timed out" in check.stderr
        assert elapsed < 5, f"check took {elapsed:.1f}s against a mute listener"


class _ArgsExporter(Exporter):
    """An exporter started by another command line, with the HTTP helpers of Exporter."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        Proc.__init__(self, [*command, "--listen-address", f"127.0.0.1:{self.port}"], env, log)


class _PidIsolatedExporter(_ArgsExporter):
    """The exporter in its own PID namespace (as root), like a separate container."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__(["unshare", "--pid", "--fork", "--mount-proc", PYTHON, "-m",
                          "exporter", "serve"], env, log)

    def stop(self, timeout: float = 15) -> None:
        self.signal_group(signal.SIGTERM)  # unshare itself ignores SIGTERM while it waits
        try:
            self.proc.wait(timeout)
        finally:
            super().stop()


def test_exporter_in_another_pid_namespace_does_not_judge_the_sentinel(make_env, procs,
                                                                      tmp_path):
    """An exporter that cannot see the cluster's processes (own container, no shared PID
    namespace) must not fail liveness for a sentinel pid it never saw alive; before, it
    read every sentinel as dead and the kubelet would restart a healthy pod forever."""
    env = make_env("redis", Q_WORKERS="1")
    procs.qcluster(env)
    exporter = _PidIsolatedExporter(env, tmp_path / "isolated.log")
    try:
        exporter.wait_ready_to_serve()
        wait_for(lambda: exporter.get("/healthz")[:2] == (200, "true"), 30,
                 what="/healthz 200 from another PID namespace")
        assert exporter.get("/livez")[:2] == (200, "true")
        _, body, _ = exporter.get("/livez?verbose=1")
        (check,) = json.loads(body)["checks"]
        assert check["ok"] and "not judged" in check["reason"]
    finally:
        exporter.stop()
