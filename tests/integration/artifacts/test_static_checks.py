"""Shipped artifacts checked by the real tools of their ecosystems."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from djq_contract import catalogue
from rsr_tasks import envsettings
from tests.procs import PYTHON, ROOT

PROM = ROOT / "prometheus"
RULES = PROM / "django-q.rules.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "django-q.json"
K8S = ROOT / "k8s"
TOOLS = ROOT / "tools" / "schema-check"
CORE_MANIFESTS = ["deployment.yaml", "service.yaml", "networkpolicy.yaml",
                  "grafana-dashboard-configmap.yaml", "cluster-exporter.yaml",
                  "cluster-exporter-service.yaml"]
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
    firing, quiet = set(), set()
    for path in (PROM / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in alerts}
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown not firing"
    runbooks = (ROOT / "docs" / "operations.md").read_text()
    for alert in alerts:
        assert set(alert["annotations"]) >= {"summary", "description", "runbook"}
        assert alert["labels"]["severity"] in ("warning", "critical")
        anchor = alert["annotations"]["runbook"].rsplit("#", 1)[1]
        assert f"## {alert['alert']}\n" in runbooks and anchor == alert["alert"].lower()


def test_prometheusrule_carries_the_same_rules(tmp_path):
    rule = yaml.safe_load((K8S / "prometheusrule.yaml").read_text())
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    extracted = tmp_path / "from-prometheusrule.yml"
    extracted.write_text(yaml.safe_dump(rule["spec"]))
    ok(run(["promtool", "check", "rules", str(extracted)]))
    # The alert unit tests, run against the rules as Kubernetes will load them.
    for path in sorted((PROM / "tests").glob("*.yml")):
        unit = yaml.safe_load(path.read_text())
        unit["rule_files"] = [str(extracted)]
        (tmp_path / path.name).write_text(yaml.safe_dump(unit))
        result = run(["promtool", "test", "rules", str(tmp_path / path.name)])
        ok(result)
        assert "SUCCESS" in result.stdout + result.stderr


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
def dashboard_panels(doc: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    return [q for p in doc["panels"] for q in [p, *p.get("panels", [])]]


def dashboard_exprs(variables: bool = True) -> list[str]:
    """Panel queries, and the series selectors of the label_values() variable queries."""
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard_panels(doc) for t in p.get("targets", [])]
    for var in doc["templating"]["list"] if variables else []:
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query or "")
        if var["type"] == "query":
            assert match, f"variable {var['name']}: not a label_values(selector, label) query"
            exprs.append(match.group(1))
    return exprs


def rule_exprs() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def concrete(expr: str) -> str:
    """Grafana macros and variables replaced the way Grafana would before querying."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def all_exprs(variables: bool = True) -> list[str]:
    return [concrete(e) for e in dashboard_exprs(variables)] + rule_exprs()


def test_every_promql_expression_parses():
    import promql_parser

    exprs = all_exprs()
    assert len(exprs) > 30
    for expr in exprs:
        promql_parser.parse(expr)  # raises on a syntax error
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (func (rate(x[5m]))")


def selector_names(expr: str) -> set[str]:
    """Metric names of every series selector in the expression, from the parsed AST."""
    import promql_parser

    names: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name or next((m.value for m in node.matchers.matchers
                                      if m.name == "__name__"), None)
            assert name, f"selector without a metric name in {expr}"
            names.add(name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def used_metric_names() -> set[str]:
    return set().union(*(selector_names(e) for e in all_exprs()))


def recording_names() -> set[str]:
    rules = yaml.safe_load(RULES.read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def contract_names() -> dict[str, str]:
    """name (as PromQL queries it) -> type, from the metric catalogue."""
    return {name: spec.type for name, spec in catalogue.by_exposed_name().items()}


def test_selector_names_come_from_the_ast():
    assert selector_names('sum by (func) (rate(a_total{x="y"}[5m])) / on (func) b:rec '
                          'and time() - max({__name__="c"} offset 1m) > 3') == {
        "a_total", "b:rec", "c"}


def aggregated_selectors(node, agg: str | None = None):
    """(metric name, innermost enclosing aggregation operator or None) of every selector."""
    import promql_parser as pp

    if isinstance(node, pp.VectorSelector):
        yield node.name or "", agg
    elif isinstance(node, pp.AggregateExpr):
        yield from aggregated_selectors(node.expr, str(node.op))
    elif isinstance(node, pp.Call):
        for arg in node.args:
            yield from aggregated_selectors(arg, agg)
    elif isinstance(node, pp.BinaryExpr):
        yield from aggregated_selectors(node.lhs, agg)
        yield from aggregated_selectors(node.rhs, agg)
    elif isinstance(node, pp.MatrixSelector):
        yield from aggregated_selectors(node.vector_selector, agg)
    elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        yield from aggregated_selectors(node.expr, agg)


def test_cluster_wide_series_use_max_and_per_pod_counters_sum():
    """N exporter replicas must read like one: every replica reports the same cluster-wide
    series (max/min over them), while per-pod counters are parts of a whole (sum). The
    catalogue gives each family's scope."""
    import promql_parser

    per_pod = {name for name, spec in catalogue.by_exposed_name().items()
               if spec.scope == catalogue.PER_POD}
    assert "django_q_tasks_total" in per_pod and "django_q_queue_size" not in per_pod
    contract = contract_names()
    checked = 0
    for expr in all_exprs(variables=False):  # label_values() lists labels, no values
        for name, agg in aggregated_selectors(promql_parser.parse(expr)):
            if ":" in name or name == "up" or name.startswith("django_q_exporter_"):
                continue  # recorded (already aggregated) or per-exporter series
            base = re.sub(r"_bucket$", "", name)
            counter = contract[base] in ("counter", "histogram")
            want = {"sum"} if base in per_pod and counter else {"max", "min"}
            assert agg in want, f"{name} under {agg} (want {want}) in: {expr}"
            checked += 1
    assert checked > 30


def test_recording_rules_used_are_defined():
    used = {n for n in used_metric_names() if ":" in n}
    assert used and used <= recording_names()
    plain = {n for n in used_metric_names() if ":" not in n}
    assert {n for n in plain if not n.startswith("django_q_")} == {"up"}


def test_dashboard_and_rules_cover_the_metric_contract():
    """Every metric of the contract is shown or alerted on (histograms via _bucket)."""
    contract = contract_names()
    assert len(contract) >= 29
    used = used_metric_names()  # includes what the recording rules read
    wanted = {f"{n}_bucket" if kind == "histogram" else n for n, kind in contract.items()}
    assert wanted - used == set()


# --- Grafana ----------------------------------------------------------------------------
def test_dashboard_shape():
    doc = json.loads(DASHBOARD.read_text())
    panels = dashboard_panels(doc)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        if panel["type"] != "row":
            assert panel.get("description"), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
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
@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path | list[dict]]:
    """``kubectl kustomize k8s/``: what ``kubectl apply -k`` would send, split into the
    core objects and the monitoring CRD objects (each kind goes to its own validator)."""
    kubectl = Path(PYTHON).parent / "kubectl"
    result = run([str(kubectl), "kustomize", str(K8S)])
    ok(result)
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    out = tmp_path_factory.mktemp("kustomize")
    core = [d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com/")]
    (out / "all.yaml").write_text(result.stdout)
    (out / "core.yaml").write_text(yaml.safe_dump_all(core))
    return {"all": out / "all.yaml", "core": out / "core.yaml", "docs": docs,
            "core_docs": core}


def test_kustomization_renders_every_object(rendered):
    kinds = sorted(d["kind"] for d in rendered["docs"])
    # Workers and the cluster-wide exporter: a Deployment and a Service each.
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "NetworkPolicy", "PrometheusRule",
                     "Service", "Service", "ServiceMonitor"]


def test_rendered_core_objects_validate_strictly(rendered):
    result = run([str(Path(PYTHON).parent / "kubernetes-validate"), "--strict",
                  str(rendered["core"])])
    ok(result)
    passed = (result.stdout + result.stderr).count(" passed for resource ")
    assert passed == len(rendered["core_docs"]) == 6


def test_rendered_monitoring_crds_validate(rendered):
    result = run(["node", "validate-crds.mjs", str(rendered["all"])], cwd=TOOLS)
    ok(result)
    crds = len(rendered["docs"]) - len(rendered["core_docs"])
    assert result.stdout.count("ok ") == crds == 2


def test_kustomization_lists_every_manifest():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(CORE_MANIFESTS + CRD_MANIFESTS)


def test_deployment_probes_and_limits():
    dep = yaml.safe_load((K8S / "deployment.yaml").read_text())
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["exec"]["command"] == ["/app/k8s/worker.sh"]
    # A broker outage at start must not become a restart loop: startup judges liveness.
    assert c["startupProbe"]["httpGet"]["path"] == "/livez"
    assert c["ports"][0]["name"] == "metrics"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_compose_config_is_valid():
    compose = shutil.which("docker-compose", path=str(Path(PYTHON).parent)) or "docker-compose"
    ok(run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"]))
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"redis", "postgres", "web", "worker", "prometheus", "grafana"} <= set(services)
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "/app/k8s/worker.sh"]


def shell_scripts() -> list[Path]:
    """Every tracked or new file of the repository that is a shell script (by *.sh or a
    sh/bash shebang), so a script added anywhere is checked without editing this test."""
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"])
    ok(listed)
    found = []
    for name in listed.stdout.splitlines():
        path = ROOT / name
        if not path.is_file() or "node_modules" in path.parts:
            continue
        with path.open("rb") as fh:
            first = fh.readline(200)
        if name.endswith(".sh") or re.match(rb"#!\s*/\S*(/env\s+)?(ba|da)?sh\b", first):
            found.append(path)
    return found


def test_shell_scripts_pass_shellcheck():
    scripts = shell_scripts()
    names = {str(p.relative_to(ROOT)) for p in scripts}
    assert {"k8s/worker.sh", "k8s/entrypoint.sh", "scripts/test", ".ci/run"} <= names
    ok(run(["shellcheck", *map(str, scripts)]))


# --- Dockerfile (checked against the files it uses; tests/integration/containers builds it) --
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_matches_the_manifests_and_the_tree(tmp_path):
    instructions = dockerfile()
    args_before_from = {}
    for word, args in instructions:
        if word == "FROM":
            break
        assert word == "ARG", f"{word} before FROM"
        name, _, default = args.partition("=")
        args_before_from[name] = default
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    for word, args in instructions:
        if word == "COPY":
            *sources, _dest = args.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                assert src.split("/")[0] not in ignored, f"COPY {src}: excluded by .dockerignore"
                if src.endswith(".sh"):
                    assert (ROOT / src).stat().st_mode & 0o111, f"{src} is not executable"
    # Every package that pyproject.toml installs is copied into the image.
    copied = {src for w, a in instructions if w == "COPY" for src in a.split()[:-1]}
    include = re.search(r"\[tool\.setuptools\.packages\.find\]\ninclude = \[(.*)\]",
                        (ROOT / "pyproject.toml").read_text())
    packages = {name.strip('" ').rstrip("*") for name in include.group(1).split(",")}
    assert packages and packages <= copied, f"packages not copied: {packages - copied}"
    base = re.sub(r"\$\{(\w+)\}", lambda m: args_before_from[m.group(1)],
                  dict(instructions)["FROM"])
    version = re.search(r"python:(\d+)\.(\d+)", base)
    pyproject = (ROOT / "pyproject.toml").read_text()
    wanted = re.search(r'requires-python = ">=(\d+)\.(\d+)"', pyproject)
    assert version and wanted and tuple(map(int, version.groups())) >= tuple(
        map(int, wanted.groups()))
    (pip,) = [a for w, a in instructions if w == "RUN" and 'pip install ".[' in a]
    for extra in re.findall(r'"\.\[([\w,]+)\]"', pip)[0].split(","):
        assert f"\n{extra} = [" in pyproject, f"extra {extra} not in pyproject.toml"

    dep = yaml.safe_load((K8S / "deployment.yaml").read_text())
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    user = dict(instructions)["USER"]
    assert user == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    entrypoint = json.loads(dict(instructions)["ENTRYPOINT"])
    assert c["command"] == entrypoint
    *init, script = entrypoint
    assert (ROOT / script.removeprefix("/app/")).exists()
    if init:  # an init (tini) as PID 1 must be installed in the image
        (apt,) = [a for w, a in instructions if w == "RUN" and "apt-get install" in a]
        assert init[0].rsplit("/", 1)[-1] in apt.split(), f"{init[0]} not installed"
    cmd = json.loads(dict(instructions)["CMD"])
    module = cmd[-1].split(":")[0]
    assert (ROOT / (module.replace(".", "/") + ".py")).exists()
    # One metrics port everywhere: image, pod, Service, scrape config, compose.
    port = c["ports"][0]["containerPort"]
    exposed = {int(p) for w, a in instructions if w == "EXPOSE" for p in a.split()}
    assert port in exposed
    svc = yaml.safe_load((K8S / "service.yaml").read_text())
    assert svc["spec"]["ports"][0]["port"] == port
    assert svc["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["DJANGO_Q_EXPORTER_LISTEN_ADDRESS"].endswith(f":{port}")
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == [f"worker:{port}"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker = compose["services"]["worker"]
    assert worker["environment"]["DJANGO_Q_EXPORTER_LISTEN_ADDRESS"].endswith(f":{port}")
    assert compose["services"]["worker"]["build"] == "."
    policy = yaml.safe_load((K8S / "networkpolicy.yaml").read_text())
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [port]
    # Graceful stop outlasts the task timeout (the settings' default) in both deployments.
    timeout = envsettings.build({}, tmp_path)["Q_CLUSTER"]["timeout"]
    assert "Q_TIMEOUT" not in env and "Q_TIMEOUT" not in worker["environment"]
    assert pod["terminationGracePeriodSeconds"] > timeout
    minutes = re.fullmatch(r"(\d+)m", worker["stop_grace_period"])
    assert minutes and int(minutes.group(1)) * 60 > timeout
