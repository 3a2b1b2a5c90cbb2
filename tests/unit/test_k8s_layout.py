"""k8s/ ships the per-pod layout: worker pods with --scope local, one cluster-scope
exporter without a qcluster, both scraped under the job the rules match."""

from __future__ import annotations

from pathlib import Path

import yaml

from exporter.config import parse

K8S = Path(__file__).resolve().parents[2] / "k8s"


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _container(path: str) -> dict:
    dep = yaml.safe_load((K8S / path).read_text())
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def test_workers_publish_their_own_cluster_and_one_exporter_the_rest():
    worker, cluster = _container("deployment.yaml"), _container("cluster-exporter.yaml")
    assert parse([], _env(worker)).scope == "local"
    assert parse([], _env(cluster)).scope == "cluster"
    assert "IS_WORKER" not in _env(cluster)  # the entrypoint runs the exporter alone
    assert cluster["args"] == ["python", "-m", "exporter", "serve"]
    assert cluster["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # Same settings and secrets as the workers: same SECRET_KEY, same broker.
    def secrets(c: dict) -> dict[str, str]:
        return {e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
                for e in c["env"] if "valueFrom" in e}

    assert secrets(cluster) == secrets(worker)
    assert _env(cluster)["DJANGO_SETTINGS_MODULE"] == _env(worker)["DJANGO_SETTINGS_MODULE"]


def test_both_services_are_scraped_and_reachable():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {"cluster-exporter.yaml", "cluster-exporter-service.yaml"} <= set(kust["resources"])
    names = {yaml.safe_load((K8S / f).read_text())["metadata"]["labels"]
             ["app.kubernetes.io/name"] for f in ("service.yaml", "cluster-exporter-service.yaml")}
    monitor = yaml.safe_load((K8S / "servicemonitor.yaml").read_text())
    (expr,) = monitor["spec"]["selector"]["matchExpressions"]
    assert expr["operator"] == "In" and set(expr["values"]) == names
    policy = yaml.safe_load((K8S / "networkpolicy.yaml").read_text())
    (expr,) = policy["spec"]["podSelector"]["matchExpressions"]
    assert set(expr["values"]) == names
