"""Keep the benchmark suite from rotting: its quickest mode runs end to end over one
small case (a private Redis, a throwaway PostgreSQL database, a real exporter) and
writes its results file (JSON + Markdown) and plot. Figures are not judged here:
performance claims live in bench/."""

import json
import subprocess

from tests.procs import PYTHON, ROOT


def test_bench_smoke_run_writes_tables_and_plot(tmp_path):
    done = subprocess.run([PYTHON, "-m", "bench", "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (data,) = [json.loads(p.read_text()) for p in tmp_path.glob("*-smoke.json")]
    assert data["mode"] == "smoke" and data["machine"]["cores"] >= 1
    assert data["machine"]["python"] and data["date"]
    results = next(tmp_path.glob("*-smoke.md")).read_text()
    assert "### Targets" in results
    assert "2 clusters + 10 unique tasks" in results
    assert "| clusters | 10 |" in results
    assert "Stat.get_all()" in results
    assert (tmp_path / data["plot"]).stat().st_size > 0
