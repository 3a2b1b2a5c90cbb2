"""The whole chain: real qcluster -> real exporter -> real Prometheus with the shipped
rules; and every metric name the dashboard and rules use is emitted by a live exporter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request

import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from djq_contract import catalogue
from tests.integration.artifacts.test_static_checks import recording_names, used_metric_names
from tests.procs import PYTHON, ROOT, enqueue, free_port, run_py, wait_for


def sample_names(exporter) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(exporter.metrics_text())
            for s in fam.samples}


def undeclared(exporter) -> list[str]:
    """Families a live exporter serves otherwise than the catalogue declares them."""
    wrong = []
    for fam in text_string_to_metric_families(exporter.metrics_text()):
        spec = catalogue.FAMILIES.get(fam.name)
        if spec is None or (fam.type, fam.documentation) != (spec.type, spec.help):
            wrong.append(fam.name)
            continue
        wrong += [f"{s.name}{s.labels}" for s in fam.samples
                  if set(s.labels) - {"le"} != set(spec.labels)]
    return wrong


SLEEPER = "dq-sleeper"  # tests.unique_jobs.sleeper: @unique_task, expiry 2 s, beat 0.5 s


def holder_pid(env) -> int:
    """The pid of the worker process holding the unique task's lock, from the heartbeat
    record the exporter reads. Read straight from Redis by the documented key layout
    (rsr_tasks/unique: ``django_q_exporter:{cluster}:unique:{task}:state``, one JSON
    object with the holder's ``pid``), not through the task side's Python API."""
    client = redis.Redis.from_url(env["REDIS_URL"])
    raw = client.get(f"django_q_exporter:{env['DJANGO_Q_NAME']}:unique:{SLEEPER}:state")
    client.close()
    assert raw, "no heartbeat record"
    return int(json.loads(raw)["pid"])


@pytest.fixture
def stack(make_env, procs):
    """A Redis-broker cluster that ran tasks (ok and failing), a schedule, and a unique task
    that completed once and now runs again in a worker (so every family is present)."""
    env = make_env("redis", Q_WORKERS="2")
    run_py(env, "from django_q.models import Schedule\n"
                "Schedule.objects.create(name='e2e', func='tests.task_funcs.quick', args='1',"
                " schedule_type=Schedule.HOURLY)\n")
    exporter = procs.exporter(env)
    cluster = procs.qcluster(env)
    exporter.wait_ready_to_serve()
    enqueue(env, "tests.task_funcs.quick", [(1,)])
    enqueue(env, "tests.task_funcs.boom", [(1,)])
    # One completed run of the unique task (last success/duration), then one that holds.
    enqueue(env, "tests.unique_jobs.sleeper", [(0.1,)])
    wait_for(lambda: exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                                    task=SLEEPER) is not None, 30, what="unique task succeeded")
    enqueue(env, "tests.unique_jobs.sleeper", [(120,)])
    wait_for(lambda: exporter.value("django_q_unique_task_running", task=SLEEPER) == 1, 30,
             what="unique task running in a worker")
    wait_for(lambda: exporter.value("django_q_tasks_total",
                                    func="tests.task_funcs.boom") == 1, 30,
             what="tasks finished")
    pid = holder_pid(env)
    assert os.getpgid(pid) == cluster.proc.pid, "the holder is a process of this qcluster"
    try:
        yield env, exporter, cluster, pid
    finally:
        try:
            os.kill(pid, signal.SIGKILL)  # never leave a SIGSTOPped worker behind
        except ProcessLookupError:
            pass


def test_every_used_metric_name_is_emitted(stack, make_env, procs):
    env, exporter, _, _ = stack
    emitted = sample_names(exporter)
    # The ORM broker adds django_q_queue_in_flight (Redis has no leases).
    orm = procs.exporter(make_env("sqlite"))
    orm.wait_ready_to_serve()
    emitted |= sample_names(orm)
    assert undeclared(exporter) == [] and undeclared(orm) == []
    wanted = {f"{s.exposed}_bucket" if s.type == "histogram" else s.exposed
              for s in catalogue.FAMILIES.values()}
    assert wanted - emitted == set(), "declared in the catalogue but never emitted"
    used = used_metric_names()
    # `up` is Prometheus' own series; test_prometheus_scrapes_and_alerts reads it.
    missing = {n for n in used if ":" not in n and n != "up"} - emitted
    assert missing == set(), f"used by rules/dashboard but not emitted: {sorted(missing)}"
    assert {n for n in used if ":" in n} <= recording_names()


def _prom_get(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _alert_states(port: int) -> dict[str, str]:
    alerts = _prom_get(port, "/api/v1/alerts")["data"]["alerts"]
    return {a["labels"]["alertname"]: a["state"] for a in alerts}


def test_prometheus_scrapes_and_alerts(stack, tmp_path):
    env, exporter, cluster, pid = stack
    overrides = tmp_path / "fast.yml"
    overrides.write_text("for_cluster_down: 1s\nfor_no_cluster_up: 1s\n"
                         "for_heartbeat_stale: 1s\n")
    subprocess.run([PYTHON, "prometheus/build.py", "--overrides", str(overrides), "--out",
                    str(tmp_path)], cwd=ROOT, check=True, timeout=60)
    port = free_port()
    # The shipped scrape config, pointed at this exporter, with fast intervals.
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(tmp_path / "django-q.rules.yml")]
    (job,) = config["scrape_configs"]
    job["scrape_timeout"] = "1s"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter.port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        def cluster_up() -> bool:
            result = _prom_get(port, "/api/v1/query",
                               query="max(django_q_cluster_up)")["data"]["result"]
            return bool(result) and result[0]["value"][1] == "1"

        # Prometheus 2.42 waits ~5 s before its first scrape.
        wait_for(cluster_up, 40, 0.5, what="Prometheus to see django_q_cluster_up 1")
        # The job the shipped config names is the one DjangoQExporterDown watches.
        rule_job = yaml.safe_load((ROOT / "prometheus" / "thresholds.yml").read_text())["job"]
        target = _prom_get(port, "/api/v1/query", query=f'up{{job="{rule_job}"}}')
        assert [r["value"][1] for r in target["data"]["result"]] == ["1"]
        assert "DjangoQUniqueTaskHeartbeatStale" not in _alert_states(port)

        # Freeze the worker running the unique task: its heartbeat stops, the age
        # passes the 2 s expiry while the cluster itself stays up.
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: _alert_states(port).get("DjangoQUniqueTaskHeartbeatStale")
                 in ("pending", "firing"), 30, 0.5, what="stale-heartbeat alert")
        wait_for(lambda: _alert_states(port).get("DjangoQUniqueTaskHeartbeatStale")
                 == "firing", 30, 0.5, what="stale-heartbeat alert firing")
        assert cluster_up() and "DjangoQClusterDown" not in _alert_states(port)

        cluster.signal_group(signal.SIGKILL)
        wait_for(lambda: _alert_states(port).get("DjangoQClusterDown") == "firing", 40, 0.5,
                 what="cluster-down alert firing")
        # ClusterDown follows the pod's own readiness (the sentinel is gone at once);
        # NoClusterUp also waits for django_q_cluster_up to read 0 (Stat TTL + grace).
        wait_for(lambda: _alert_states(port).get("DjangoQNoClusterUp") in ("pending", "firing"),
                 40, 0.5, what="no-cluster-up alert pending")
    finally:
        prom.terminate()
        prom.wait(10)
        log.close()
