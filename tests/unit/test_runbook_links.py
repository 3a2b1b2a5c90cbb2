"""Every alert links to its runbook: a heading that exists in docs/operations.md.

Alert annotations are URLs on the project's GitHub page, so the anchor must be the
slug GitHub derives from the heading text; a renamed heading or a moved file would
otherwise leave the on-call engineer on the top of a page with no runbook."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = [ROOT / "prometheus" / "django-q.rules.yml", ROOT / "k8s" / "prometheusrule.yaml"]
RUNBOOKS = "docs/operations.md"
BLOB = "/blob/main/"


def github_slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped (letters, digits,
    ``_``, ``-`` and spaces kept), each space a hyphen."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Anchors of every heading outside code fences; repeats get -1, -2 as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if m:
            slug = github_slug(re.sub(r"`", "", m.group(1)))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def alerts(path: Path) -> list[dict]:
    doc = yaml.safe_load(path.read_text())
    groups = doc["spec"]["groups"] if "spec" in doc else doc["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("heading, slug", [
    ("DjangoQClusterDown", "djangoqclusterdown"),
    ('Nothing shows up ("no clusters")', "nothing-shows-up-no-clusters"),
    ("Health, precisely", "health-precisely"),
    ("`@unique_task` per run", "unique_task-per-run"),
])
def test_slug_matches_githubs_anchor(heading, slug):
    assert github_slug(heading.replace("`", "")) == slug


def test_repeated_headings_get_numbered_anchors():
    assert anchors("# A\n## A\n```\n# not a heading\n```\n### B b\n") == {"a", "a-1", "b-b"}


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_links_to_an_existing_runbook_heading(path):
    headings = anchors((ROOT / RUNBOOKS).read_text())
    rules = alerts(path)
    assert rules, f"no alerts in {path.name}"
    broken = []
    for rule in rules:
        url = rule.get("annotations", {}).get("runbook") or rule.get("annotations", {}).get(
            "runbook_url")
        if not url:
            broken.append(f"{rule['alert']}: no runbook annotation")
            continue
        parts = urlsplit(url)
        file = parts.path.split(BLOB, 1)[-1]
        if file != RUNBOOKS:
            broken.append(f"{rule['alert']}: links to {file}, not {RUNBOOKS}")
        elif parts.fragment not in headings:
            broken.append(f"{rule['alert']}: #{parts.fragment} is no heading of {RUNBOOKS}")
    assert not broken, "\n".join(broken)
