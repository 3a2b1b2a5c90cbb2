"""k8s/entrypoint.sh runs probe server + qcluster, stops both on SIGTERM, and ends
(stopping the probe server) when qcluster ends, with qcluster's exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.procs import PYTHON, ROOT, free_port, wait_for

ENTRYPOINT = ROOT / "k8s" / "entrypoint.sh"


def _pids_alive(pids):
    return [p for p in pids if Path(f"/proc/{p}").exists()
            and Path(f"/proc/{p}/stat").read_text().split(") ", 1)[1][0] != "Z"]


def _children(pid: int) -> dict[int, str]:
    """Child pid -> command line."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(p) for p in path.read_text().split()] if path.exists() else []
    return {p: Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ") for p in pids}


@pytest.fixture
def worker(make_env, tmp_path):
    """entrypoint.sh in worker mode, healthy; yields (process, children, log path)."""
    port = free_port()
    env = make_env("sqlite", IS_WORKER="1", APP_DIR=str(ROOT), PYTHON=PYTHON,
                   DJANGO_Q_EXPORTER_LISTEN_ADDRESS=f"127.0.0.1:{port}")
    log_path = tmp_path / "entrypoint.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(["sh", str(ENTRYPOINT)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return r.status == 200

        wait_for(healthy, 40, 0.2, what="/healthz 200 through entrypoint.sh")
        children = _children(proc.pid)
        assert len(children) == 2, children  # probe server and qcluster
        yield proc, children, log_path
    finally:
        try:  # the script, its children and any orphaned cluster processes
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
        log.close()


def test_worker_mode_runs_both_and_forwards_sigterm(worker):
    proc, children, log_path = worker
    assert sorted("qcluster" in cmd for cmd in children.values()) == [False, True]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    elapsed = time.monotonic() - t0
    assert code == 0, log_path.read_text()
    assert elapsed < 15, f"stopped in {elapsed:.1f}s"  # idle qcluster: ~1-2 s in practice
    wait_for(lambda: not _pids_alive(children), 5, what="both children gone")


def test_worker_mode_ends_with_qcluster_status(worker):
    """qcluster dying (here SIGKILL, status 137) ends the script with that status and
    stops the probe server, so the container restarts instead of probing a dead node."""
    proc, children, log_path = worker
    (cluster,) = [pid for pid, cmd in children.items() if "qcluster" in cmd]
    (probe,) = [pid for pid in children if pid != cluster]
    os.kill(cluster, signal.SIGKILL)
    assert proc.wait(15) == 137, log_path.read_text()
    wait_for(lambda: not _pids_alive([probe]), 5, what="probe server stopped")
    assert "qcluster exited with status 137" in log_path.read_text()


def test_web_mode_execs_the_command(make_env):
    env = make_env("sqlite", IS_WORKER="")
    result = subprocess.run(["sh", str(ENTRYPOINT), "echo", "web"],
                            env=env, capture_output=True, text=True, timeout=10)
    assert result.returncode == 0 and result.stdout.strip() == "web"
    bare = subprocess.run(["sh", str(ENTRYPOINT)], env=env,
                          capture_output=True, text=True, timeout=10)
    assert bare.returncode == 64 and "IS_WORKER" in bare.stderr
