"""Shipped artifacts checked by the real tools of their ecosystems."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.procs import PYTHON, ROOT

PROM = ROOT / "prometheus"
RULES = PROM / "django-q.rules.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "django-q.json"
K8S = ROOT / "k8s"
TOOLS = ROOT / "tools" / "schema-check"
CORE_MANIFESTS = ["deployment.yaml", "service.yaml", "networkpolicy.yaml",
                  "grafana-dashboard-configmap.yaml"]
CRD_MANIFESTS = ["servicemonitor.yaml", "prometheusrule.yaml"]


def run(cmd, cwd=ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, **kw)


def ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


# --- Prometheus ------------------------------------------------------------------------
def test_promtool_check_config_and_rules():
    ok(run(["promtool", "check", "config", str(PROM / "prometheus.yml")]))
    ok(run(["promtool", "check", "rules", str(RULES)]))


def test_promtool_unit_tests():
    result = run(["promtool", "test", "rules", *map(str, sorted((PROM / "tests").glob("*.yml")))])
    ok(result)
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_annotations():
    rules = yaml.safe_load(RULES.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    tested = set()
    for path in (PROM / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    names = {a["alert"] for a in alerts}
    assert names - tested == set(), "alerts never shown firing"
    readme = (ROOT / "README.md").read_text()
    for alert in alerts:
        assert set(alert["annotations"]) >= {"summary", "description", "runbook"}
        assert alert["labels"]["severity"] in ("warning", "critical")
        anchor = alert["annotations"]["runbook"].rsplit("#", 1)[1]
        assert f"### {alert['alert']}" in readme and anchor == alert["alert"].lower()


def test_prometheusrule_carries_the_same_rules(tmp_path):
    rule = yaml.safe_load((K8S / "prometheusrule.yaml").read_text())
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    extracted = tmp_path / "from-prometheusrule.yml"
    extracted.write_text(yaml.safe_dump(rule["spec"]))
    ok(run(["promtool", "check", "rules", str(extracted)]))


def test_generated_files_are_up_to_date():
    ok(run([PYTHON, "prometheus/build.py", "--check"]))
    ok(run([PYTHON, "grafana/build.py", "--check"]))


def test_threshold_overrides(tmp_path):
    overrides = tmp_path / "o.yml"
    overrides.write_text("for_cluster_down: 10s\nqueue_age_max: 42\n")
    ok(run([PYTHON, "prometheus/build.py", "--overrides", str(overrides), "--out",
            str(tmp_path)]))
    rules = yaml.safe_load((tmp_path / "django-q.rules.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["DjangoQClusterDown"]["for"] == "10s"
    assert alerts["DjangoQQueueLatencyHigh"]["expr"].endswith("> 42")
    bad = tmp_path / "bad.yml"
    bad.write_text("no_such_threshold: 1\n")
    result = run([PYTHON, "prometheus/build.py", "--overrides", str(bad), "--out", str(tmp_path)])
    assert result.returncode != 0 and "no_such_threshold" in result.stderr


# --- PromQL in rules and dashboard ------------------------------------------------------
def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def concrete(expr: str) -> str:
    """Grafana macros and variables replaced the way Grafana would before querying."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def test_every_promql_expression_parses():
    import promql_parser

    exprs = [concrete(e) for e in dashboard_exprs()] + rule_exprs()
    assert len(exprs) > 30
    for expr in exprs:
        promql_parser.parse(expr)  # raises on a syntax error
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (func (rate(x[5m]))")


def used_metric_names() -> set[str]:
    names = set()
    for expr in dashboard_exprs() + rule_exprs():
        # Label lists of aggregations and vector matching are not metric names.
        expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "",
                      expr)
        expr = re.sub(r"\{[^}]*\}", "", expr)  # nor are label matchers
        names.update(re.findall(r"\b(django_q_[a-z_]+|django_q:[a-z0-9_:]+)", expr))
    return names


def recording_names() -> set[str]:
    rules = yaml.safe_load(RULES.read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def test_recording_rules_used_are_defined():
    used = {n for n in used_metric_names() if ":" in n}
    assert used and used <= recording_names()


# --- Grafana ----------------------------------------------------------------------------
def test_dashboard_shape():
    doc = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        if panel["type"] != "row":
            assert panel.get("description"), panel["title"]
    variables = {v["name"] for v in doc["templating"]["list"]}
    assert {"datasource", "cluster_name", "host"} <= variables
    rows = [p["title"] for p in doc["panels"] if p["type"] == "row"]
    assert rows == ["Cluster health", "Queues", "Tasks", "Unique tasks", "Exporter"]


def tsc_check(tmp_dir: Path, dashboard_json: str) -> subprocess.CompletedProcess:
    (tmp_dir / "dashboard.ts").write_text(
        "import type { Dashboard } from '@grafana/schema';\n"
        f"const dashboard: Dashboard = {dashboard_json};\nexport default dashboard;\n")
    return run([str(TOOLS / "node_modules" / ".bin" / "tsc"), "-p", str(TOOLS / "tsconfig.json")])


def test_dashboard_type_checks_against_grafana_schema():
    generated = TOOLS / "generated"
    generated.mkdir(exist_ok=True)
    ok(tsc_check(generated, DASHBOARD.read_text()))
    # The check has teeth: an unknown top-level key fails it.
    bad = json.loads(DASHBOARD.read_text())
    bad["panelz"] = []
    result = tsc_check(generated, json.dumps(bad))
    assert result.returncode != 0 and "panelz" in result.stdout
    ok(tsc_check(generated, DASHBOARD.read_text()))


# --- Kubernetes, compose, shell -------------------------------------------------------------
def test_core_manifests_validate_strictly():
    result = run([str(Path(PYTHON).parent / "kubernetes-validate"), "--strict",
                  *[str(K8S / m) for m in CORE_MANIFESTS]])
    ok(result)
    assert result.stdout.count("passed") + result.stderr.count("passed") == len(CORE_MANIFESTS)


def test_monitoring_crds_validate():
    result = run(["node", "validate-crds.mjs", *[str(K8S / m) for m in CRD_MANIFESTS]], cwd=TOOLS)
    ok(result)
    assert result.stdout.count("ok ") == 2


def test_kustomization_lists_every_manifest():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(CORE_MANIFESTS + CRD_MANIFESTS)


def test_deployment_probes_and_limits():
    dep = yaml.safe_load((K8S / "deployment.yaml").read_text())
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["exec"]["command"] == ["/app/k8s/worker.sh"]
    assert c["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert c["ports"][0]["name"] == "metrics"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > 300  # Q_TIMEOUT default
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_compose_config_is_valid():
    compose = shutil.which("docker-compose", path=str(Path(PYTHON).parent)) or "docker-compose"
    ok(run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"]))
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"redis", "postgres", "web", "worker", "prometheus", "grafana"} <= set(services)
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "/app/k8s/worker.sh"]


def test_shell_scripts_pass_shellcheck():
    scripts = [*K8S.glob("*.sh"), *(ROOT / "scripts").iterdir(), ROOT / ".ci" / "run"]
    ok(run(["shellcheck", *map(str, scripts)]))
