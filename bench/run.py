"""The benchmark suite: figures and ratios against baselines measured in the same run.

    scripts/bench            # full run (the results file records how long it took)
    scripts/bench --quick    # fewer sizes and samples
    scripts/bench --smoke    # one small case, for the test suite (seconds)

Writes the results file ``<date>-<arch>-<N>cpu[-mode].json`` (date, machine,
every figure), its Markdown rendering ``.md`` and the scrape-cost plot ``.png``
to bench/results/ (or --out); ``python -m bench.publish FILE`` puts a results
file into docs/performance.md. Real parts only: a private redis-server per stack,
one throwaway PostgreSQL database per run, real exporter and qcluster
processes, wrk as the load generator, gunicorn for the peer baseline.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    footprint,
    http,
    keyspace,
    layouts,
    overheads,
    probes,
    scrapes,
    statuspage,
)
from bench import stack as S  # noqa: E402
from bench.report import Report  # noqa: E402

SECTIONS = {"probes": probes.run, "footprint": footprint.run, "overheads": overheads.run,
            "scrapes": scrapes.run, "keyspace": keyspace.run, "http": http.run,
            "layouts": layouts.run, "status": statuspage.run}


@dataclass
class Context:
    quick: bool
    smoke: bool
    db: str
    report: Report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer sizes and samples")
    mode.add_argument("--smoke", action="store_true",
                      help="the quickest run: only the cluster curve at 1 and 10 and a 2 + 10 "
                           "target case (keeps the suite from rotting; figures mean little)")
    p.add_argument("--only", choices=list(SECTIONS), action="append",
                   help="run only these sections (repeatable)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results",
                   help="where the results files and the plot go (default bench/results)")
    p.add_argument("--pg-admin-url", default=S.PG_ADMIN_URL,
                   help="PostgreSQL URL allowed to CREATE/DROP DATABASE "
                        "(default $TEST_PG_ADMIN_URL or postgres@127.0.0.1)")
    a = p.parse_args(argv)
    sections = a.only or (["scrapes"] if a.smoke else list(SECTIONS))
    mode_name = "smoke" if a.smoke else "quick" if a.quick else "full"
    report = Report(a.out, mode_name)
    started = time.monotonic()
    with S.postgres_database(a.pg_admin_url) as db:
        ctx = Context(a.quick or a.smoke, a.smoke, db, report)
        for name in SECTIONS:
            if name in sections:
                print(f"== {name}", flush=True)
                SECTIONS[name](ctx)
    for path in report.write(time.monotonic() - started):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
