"""docker-compose.yml brought up for real with podman-compose.

The override ``compose.standins.yml`` swaps only the image names (the locally built
application image, stand-ins for redis, postgres and prometheus) and lets the engine
pick loopback host ports. podman 4.3 cannot wait for ``service_healthy`` (podman-compose
skips that condition before podman 4.6) and schedules no healthchecks without systemd,
so the services come up in the compose file's dependency order, each step waiting for
the healthcheck or the exit the compose file asks for. Grafana is not run (no image
here): a shell in its place checks what Grafana would read.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests import procs as P
from tests.integration.containers import engine as E

# A cold machine builds the base images first (minutes, see docs/deployment.md): the
# module's first test carries that fixture set-up.
pytestmark = pytest.mark.timeout(1800)
COMPOSE_FILE = P.ROOT / "docker-compose.yml"
OVERRIDE = E.HERE / "compose.standins.yml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
RULES = yaml.safe_load((P.ROOT / "prometheus" / "django-q.rules.yml").read_text())


class Stack:
    """One compose project of docker-compose.yml + the stand-in override."""

    def __init__(self, podman: E.Podman, images: dict[str, str]) -> None:
        self.podman = podman
        self.project = f"djq-{uuid.uuid4().hex[:8]}"
        binary = Path(P.PYTHON).parent / "podman-compose"
        self.cmd = [str(binary), "--in-pod", "false", "-p", self.project,
                    "--podman-args", " ".join(E.global_flags()),
                    "--podman-run-args", "--ulimit host",
                    "-f", str(COMPOSE_FILE), "-f", str(OVERRIDE)]
        self.env = {**E.engine_env(), **images}

    def compose(self, *args: str, timeout: float = 180,
                check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.cmd, *args], env=self.env, cwd=P.ROOT,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"podman-compose {' '.join(args)} exited "
                                 f"{result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def container(self, service: str) -> str:
        out = self.podman.run(
            "ps", "--all", "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
            "--format", "{{.Names}}").stdout.split()
        assert len(out) == 1, f"{service}: containers {out}"
        return out[0]

    def url(self, service: str, port: int) -> str:
        published = self.podman.run("port", self.container(service), str(port)).stdout
        return f"http://{published.split()[0]}"

    def wait_healthy(self, service: str, timeout: float) -> None:
        name = self.container(service)

        def healthy() -> bool:
            state = self.podman.inspect(name)["State"]
            assert state["Status"] == "running", f"{service}:\n{self.podman.logs(name)}"
            return self.podman.healthcheck(name)

        P.wait_for(healthy, timeout, 0.5, what=f"{service}'s compose healthcheck")

    def wait_exited(self, service: str, timeout: float) -> int:
        name = self.container(service)
        state = P.wait_for(lambda: (s := self.podman.inspect(name)["State"])["Status"]
                           == "exited" and s, timeout, 0.5, what=f"{service} to finish")
        return state["ExitCode"]

    def up(self, *services: str) -> None:
        self.compose("up", "--detach", "--no-build", "--no-deps", *services)

    def depends(self, service: str) -> dict[str, str]:
        return {name: dep["condition"]
                for name, dep in COMPOSE["services"][service].get("depends_on", {}).items()}


@pytest.fixture(scope="module")
def stack(podman, app_image, app_base, standin_images, figures):
    images = {"DJQ_APP_IMAGE": app_image, "DJQ_GRAFANA_STANDIN_IMAGE": app_base,
              "DJQ_REDIS_IMAGE": standin_images["redis"],
              "DJQ_POSTGRES_IMAGE": standin_images["postgres"],
              "DJQ_PROMETHEUS_IMAGE": standin_images["prometheus"]}
    stack = Stack(podman, images)
    t0 = time.monotonic()
    try:
        # The order and the conditions the compose file states, step by step.
        assert stack.depends("migrate") == {"redis": "service_healthy",
                                            "postgres": "service_healthy"}
        stack.up("redis", "postgres")
        stack.wait_healthy("redis", 60)
        stack.wait_healthy("postgres", 90)
        assert stack.depends("worker") == {"migrate": "service_completed_successfully"}
        stack.up("migrate")
        code = stack.wait_exited("migrate", 180)
        assert code == 0, podman.logs(stack.container("migrate"))
        assert stack.depends("prometheus") == {"worker": "service_started"}
        stack.up("web", "worker", "prometheus")
        stack.wait_healthy("worker", 120)
        figures.record("compose_up_to_worker_healthy_seconds", time.monotonic() - t0)
        yield stack
    finally:
        stack.compose("down", "--volumes", "--timeout", "10", timeout=300, check=False)
        leftovers = podman.run("ps", "--all", "--quiet", "--filter",
                               f"label=com.docker.compose.project={stack.project}").stdout
        if leftovers.split():
            podman.remove(*leftovers.split())


def prometheus_api(base: str, path: str, **params: str) -> dict:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{base}/api/v1/{path}{query}", timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_the_worker_and_loads_the_rules(stack, figures):
    base = stack.url("prometheus", 9090)
    t0 = time.monotonic()

    def worker_up():
        result = prometheus_api(base, "query", query='up{job="django-q-exporter"}')["result"]
        return result and result[0]["value"][1] == "1" and result

    (series,) = P.wait_for(worker_up, 90, 1, what="Prometheus: up == 1 for the worker")
    figures.record("compose_prometheus_first_up_seconds", time.monotonic() - t0)
    assert series["metric"]["instance"] == "worker:9847"
    # The worker's own metrics reached Prometheus, not only the up series.
    cluster = P.wait_for(lambda: prometheus_api(base, "query", query="django_q_cluster_up")
                         ["result"], 30, 1, what="django_q_cluster_up in Prometheus")
    assert {s["value"][1] for s in cluster} == {"1"}
    loaded = {g["name"]: len(g["rules"]) for g in prometheus_api(base, "rules")["groups"]}
    assert loaded == {g["name"]: len(g["rules"]) for g in RULES["groups"]}


def test_worker_metrics_published_on_the_host(stack):
    with urllib.request.urlopen(f"{stack.url('worker', 9847)}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert "django_q_exporter_build_info{" in text


def test_grafana_provisioning_is_mounted_where_grafana_reads_it(stack):
    """Grafana itself is not run (no image of it here). What it would read is: the
    provisioning folders at /etc/grafana/provisioning, the dashboards folder that the
    dashboard provider names, and the datasource URL, which must reach Prometheus on
    the compose network."""
    grafana = COMPOSE["services"]["grafana"]
    provisioning = "/etc/grafana/provisioning"
    assert any(v.endswith(f":{provisioning}:ro") for v in grafana["volumes"])
    provider = yaml.safe_load((P.ROOT / "grafana/provisioning/dashboards/django-q.yml")
                              .read_text())["providers"][0]["options"]["path"]
    datasource = yaml.safe_load((P.ROOT / "grafana/provisioning/datasources/prometheus.yml")
                                .read_text())["datasources"][0]["url"]
    script = (f"set -e; cd {provisioning}; find . -type f; "
              f"echo ==; ls {shlex.quote(provider)}; echo ==; "
              f"curl -sS -m 5 -o /dev/null -w '%{{http_code}}' {shlex.quote(datasource)}/-/ready")
    result = stack.compose("run", "--rm", "--no-deps", "--entrypoint", "sh", "grafana",
                           "-c", script)
    config_files, dashboards, ready = result.stdout.split("==")
    assert set(config_files.split()) == {"./dashboards/django-q.yml",
                                         "./datasources/prometheus.yml"}
    shipped = {p.name for p in (P.ROOT / "grafana" / "dashboards").glob("*.json")}
    assert shipped and set(dashboards.split()) == shipped
    assert ready.strip() == "200", result.stderr
