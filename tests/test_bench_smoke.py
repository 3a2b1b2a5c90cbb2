"""Keep the benchmark suite from rotting: its quickest section runs and reports."""

import subprocess

from tests.procs import PYTHON, ROOT


def test_bench_overheads_quick_run():
    done = subprocess.run([PYTHON, "-m", "bench.run", "--quick", "--only", "overheads"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "@unique_task per run" in done.stdout
    assert "signal instrumentation per task" in done.stdout
    assert (ROOT / "bench" / "results" / "results.md").exists()
