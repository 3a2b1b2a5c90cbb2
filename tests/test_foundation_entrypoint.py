"""k8s/entrypoint.sh runs probe server + qcluster and stops both on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.procs import PYTHON, ROOT, free_port, wait_for


def _pids_alive(pids):
    return [p for p in pids if Path(f"/proc/{p}").exists()
            and Path(f"/proc/{p}/stat").read_text().split(") ", 1)[1][0] != "Z"]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_worker_mode_runs_both_and_forwards_sigterm(make_env, tmp_path):
    port = free_port()
    env = make_env("sqlite", IS_WORKER="1", APP_DIR=str(ROOT), PYTHON=PYTHON,
                   DJANGO_Q_EXPORTER_LISTEN_ADDRESS=f"127.0.0.1:{port}")
    log = open(tmp_path / "entrypoint.log", "wb")
    proc = subprocess.Popen(["sh", str(ROOT / "k8s" / "entrypoint.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return r.status == 200

        wait_for(healthy, 40, 0.2, what="/healthz 200 through entrypoint.sh")
        children = _children(proc.pid)
        assert len(children) == 2, children  # probe server and qcluster
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        assert code == 0, (tmp_path / "entrypoint.log").read_text()
        assert time.monotonic() - t0 < 30
        wait_for(lambda: not _pids_alive(children), 5, what="both children gone")
    finally:
        if proc.poll() is None:
            import os

            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_web_mode_execs_the_command(make_env):
    env = make_env("sqlite", IS_WORKER="")
    result = subprocess.run(["sh", str(ROOT / "k8s" / "entrypoint.sh"), "echo", "web"],
                            env=env, capture_output=True, text=True, timeout=10)
    assert result.returncode == 0 and result.stdout.strip() == "web"
    bare = subprocess.run(["sh", str(ROOT / "k8s" / "entrypoint.sh")], env=env,
                          capture_output=True, text=True, timeout=10)
    assert bare.returncode == 64 and "IS_WORKER" in bare.stderr
