"""The detection matrix's stack: a real Prometheus with the shipped rules (short ``for:``)
scraping exporters in front of real qclusters on several host names, targets from a
file_sd file the test rewrites; and a recorder of alert states read from Prometheus' API."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from tests.procs import PYTHON, ROOT, Exporter, Proc, free_port, qcluster, wait_for

JOB = "django-q-exporter"
SCRAPE = 1.0  # scrape and evaluation interval, seconds
FOR = 10.0  # the for: of every alert but where OVERRIDES says otherwise
OVERRIDES = {
    "for_cluster_down": "10s", "for_no_cluster_up": "10s", "for_cluster_stuck": "10s",
    "for_config_mismatch": "10s", "for_backlog_growing": "10s", "backlog_window": "20s",
    "backlog_min": 5, "for_queue_latency": "10s", "queue_age_max": 8,
    "for_failure_ratio": "10s", "failure_ratio_window": "30s", "failure_min_rate": 0.1,
    "for_heartbeat_stale": "5s", "for_unique_no_success": "5s", "unique_success_max_age": 25,
    "lock_lost_window": "30s", "for_schedule_overdue": "10s", "schedule_delay_max": 5,
    "for_broker_down": "10s", "for_exporter_down": "10s", "for_no_exporter_up": "10s",
    "for_collector_failing": "10s",
}
EXPORTER_FLAGS = ("--stat-grace", "3", "--startup-grace", "8", "--progress-limit", "6",
                  "--health-cache", "0.25")


def render_rules(out: Path) -> dict[str, float]:
    """Render the shipped rules with OVERRIDES; returns alert name -> for: seconds."""
    (out / "overrides.yml").write_text(yaml.safe_dump(OVERRIDES))
    subprocess.run([PYTHON, "prometheus/build.py", "--overrides", str(out / "overrides.yml"),
                    "--out", str(out)], cwd=ROOT, check=True, timeout=60)
    rules = yaml.safe_load((out / "django-q.rules.yml").read_text())
    return {r["alert"]: _seconds(r["for"]) for g in rules["groups"] for r in g["rules"]
            if "alert" in r}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    return float(duration)


class Prometheus:
    def __init__(self, workdir: Path, rules: Path) -> None:
        self.port = free_port()
        self.targets = workdir / "targets.json"
        self.write_targets([])
        config = {
            "global": {"scrape_interval": f"{SCRAPE:g}s",
                       "evaluation_interval": f"{SCRAPE:g}s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{
                "job_name": JOB, "scrape_timeout": f"{SCRAPE:g}s",
                "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "2s"}],
            }],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def write_targets(self, ports: list[int]) -> None:
        """Atomically replace the file_sd targets (Prometheus watches the file)."""
        tmp = self.targets.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{p}" for p in ports]}]
                                  if ports else []))
        tmp.replace(self.targets)

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("/api/v1/query", query=expr)["result"]

    def active_targets(self) -> set[str]:
        return {t["labels"]["instance"] for t in self.api("/api/v1/targets")["activeTargets"]}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def alert_key(alert: dict) -> str:
    labels = {k: v for k, v in alert["labels"].items() if k != "severity"}
    name = labels.pop("alertname")
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k not in ("job",))
    return f"{name}{{{inner}}}"


class AlertRecorder:
    """Polls /api/v1/alerts; keeps, per alert key, when it was first seen pending and
    firing and when it was last seen at all (monotonic seconds)."""

    def __init__(self, prom: Prometheus, interval: float = 0.25) -> None:
        self.prom = prom
        self.interval = interval
        self.lock = threading.Lock()
        self.current: dict[str, str] = {}
        self.events: list[tuple[float, str, str]] = []  # (t, key, state)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                alerts = self.prom.api("/api/v1/alerts")["alerts"]
                now = time.monotonic()
                states = {alert_key(a): a["state"] for a in alerts}
                with self.lock:
                    for key, state in states.items():
                        if self.current.get(key) != state:
                            self.events.append((now, key, state))
                    for key in set(self.current) - set(states):
                        self.events.append((now, key, "inactive"))
                    self.current = states
            except Exception:  # noqa: BLE001 (Prometheus not up yet: keep polling)
                pass
            self._stop.wait(self.interval)

    def snapshot(self) -> dict[str, str]:
        with self.lock:
            return dict(self.current)

    def since(self, t0: float) -> list[tuple[float, str, str]]:
        with self.lock:
            return [e for e in self.events if e[0] >= t0]

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


class Node:
    """One "host": an exporter and a qcluster sharing a host name (unshare --uts)."""

    def __init__(self, host: str, env: dict[str, str], workdir: Path) -> None:
        self.host = host
        self.env = env
        self.workdir = workdir
        self.port = free_port()
        self.exporter: Exporter | None = None
        self.cluster: Proc | None = None
        self._n = 0

    def _log(self, what: str) -> Path:
        self._n += 1
        return self.workdir / f"{self.host}-{what}-{self._n}.log"

    def start_exporter(self, **env_changes: str) -> Exporter:
        env = {**self.env, **env_changes}
        self.exporter = Exporter(env, self._log("exporter"), *EXPORTER_FLAGS,
                                 hostname=self.host, port=self.port)
        self.exporter.wait_ready_to_serve()
        return self.exporter

    def start_cluster(self) -> Proc:
        self.cluster = qcluster(self.env, self._log("qcluster"), self.host)
        return self.cluster

    def stop_exporter(self) -> None:
        if self.exporter is not None:
            self.exporter.stop()
            self.exporter = None

    def stop_cluster(self, sig_kill: bool = False) -> None:
        if self.cluster is not None:
            if sig_kill:
                import signal

                self.cluster.signal_group(signal.SIGKILL)
                self.cluster.proc.wait(10)
            self.cluster.stop()
            self.cluster = None

    def stop(self) -> None:
        self.stop_cluster()
        self.stop_exporter()

    def wait_cluster_ready(self, timeout: float = 60) -> None:
        wait_for(lambda: self.exporter.get("/readyz", timeout=2)[0] == 200, timeout, 0.2,
                 what=f"{self.host} ready")
