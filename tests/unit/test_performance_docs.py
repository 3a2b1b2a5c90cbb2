"""docs/performance.md shows a committed benchmark run, unedited: the figures a
reader sees are the figures `scripts/bench` wrote, with the date and machine."""

import json
import re
from pathlib import Path

from bench.publish import block, embedded

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "performance.md"
#: A number with a unit, as the results quote them (12.3 ms, 45 µs, 1.2×, 0.5 %, 64 MiB).
FIGURE = re.compile(r"\d[\d.,]*\s?(?:ms|µs|×|%|MiB)")


def _doc_and_results():
    doc = DOC.read_text()
    found = embedded(doc)
    assert found, "docs/performance.md has no <!-- results: ... --> block"
    path, text = found
    return doc, path, text, json.loads((ROOT / path).read_text())


def test_the_results_file_names_date_machine_and_run():
    _, path, _, data = _doc_and_results()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", data["date"]) and data["date"] in path
    machine = data["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["python"]
    assert data["mode"] == "full" and data["seconds"] > 0
    assert data["targets"] and data["tables"]


def test_embedded_results_are_the_rendering_of_the_file_they_name():
    _, path, text, data = _doc_and_results()
    assert text == block(path, data), (
        f"docs/performance.md differs from {path}: run python -m bench.publish {path}")


def test_the_plot_the_docs_link_to_is_committed():
    _, path, _, data = _doc_and_results()
    assert data["plot"] and (ROOT / path).with_name(data["plot"]).stat().st_size > 0


def test_figures_in_the_prose_come_from_the_results():
    """Figures outside the embedded block (and outside command examples) must
    be figures of the run, so prose cannot drift from the measurements."""
    doc, _, text, _ = _doc_and_results()
    prose = re.sub(r"```.*?```", "", doc.replace(text, ""), flags=re.S)
    # Fixed inputs of the benchmark, not results: the task length.
    inputs = {"10 ms"}
    stray = [f for f in FIGURE.findall(prose) if f not in inputs and f not in text]
    assert not stray, f"figures in docs/performance.md not in the results: {stray}"
