"""The packages depend one way: djq_contract at the bottom, exporter and rsr_tasks on it.

Built from the source with ``ast`` (every ``import`` and ``from`` statement, at module
level or inside functions, relative ones resolved), not by importing anything, so a
function-local import that only runs in production counts as much as a top-level one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.procs import ROOT

PACKAGES = ("djq_contract", "exporter", "rsr_tasks")
#: The one module of rsr_tasks allowed to import the exporter: it starts the server.
SERVER_COMMAND = "rsr_tasks.management.commands.django_q_probettp"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import statement in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, id(node) in top))
            # ``from pkg import module`` imports pkg.module too
            found += [(f"{target}.{alias.name}", id(node) in top) for alias in node.names]
    return found


def edges() -> list[tuple[str, str, bool]]:
    """(importing module, imported module of one of PACKAGES or any other, top level?)."""
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = module_name(path)
            out += [(source, target, top) for target, top in imports(path)]
    return out


def package_of(module: str) -> str:
    return module.split(".", 1)[0]


def test_the_graph_sees_function_local_and_relative_imports(tmp_path, monkeypatch):
    pkg = ROOT / "exporter"
    assert ("djq_contract.redisconn", False) in imports(pkg / "sources" / "__init__.py")
    assert ("exporter.collectors", True) in imports(pkg / "collectors" / "clusters.py")
    probe = tmp_path / "exporter" / "sub" / "mod.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from .. import app\nfrom .sibling import x\n"
                     "def f():\n    import rsr_tasks.broker\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert set(imports(probe)) >= {("exporter", True), ("exporter.app", True),
                                   ("exporter.sub.sibling", True), ("rsr_tasks.broker", False)}


def test_no_import_from_the_exporter_into_the_task_app():
    wrong = [(s, t) for s, t, _ in edges()
             if package_of(s) == "exporter" and package_of(t) == "rsr_tasks"]
    assert wrong == []


def test_the_task_app_imports_the_exporter_only_to_start_the_server():
    users = {s for s, t, _ in edges()
             if package_of(s) == "rsr_tasks" and package_of(t) == "exporter"}
    assert users <= {SERVER_COMMAND}


def test_the_contract_imports_neither_package_and_only_the_stdlib_at_import_time():
    wrong = [(s, t) for s, t, _ in edges()
             if package_of(s) == "djq_contract" and package_of(t) in ("exporter", "rsr_tasks")]
    assert wrong == []
    allowed = set(sys.stdlib_module_names) | {"__future__", "djq_contract"}
    third_party = [(s, t) for s, t, top in edges()
                   if package_of(s) == "djq_contract" and top and package_of(t) not in allowed]
    assert third_party == [], "import these inside the function that needs them"


def test_no_cycle_between_packages():
    graph = {p: set() for p in PACKAGES}
    for s, t, _ in edges():
        if package_of(t) in graph and package_of(t) != package_of(s):
            graph[package_of(s)].add(package_of(t))
    assert graph["djq_contract"] == set()

    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph[start])

    assert [p for p in PACKAGES if reaches(p, p)] == []
