"""Overlapping scrapes (two Prometheus replicas scraping one pod, as HA set-ups do)
share the collectors' runs: neither reports a collector as failed because the other
scrape was collecting at the same moment."""

from __future__ import annotations

import threading

from tests.procs import wait_for


def test_overlapping_scrapes_all_report_success(make_env, procs):
    exporter = procs.exporter(make_env("sqlite"))
    exporter.wait_ready_to_serve()
    wait_for(lambda: exporter.get("/metrics")[0] == 200, 10, what="first scrape")
    threads, rounds = 8, 10
    barrier = threading.Barrier(threads)
    failures: list[str] = []
    scrapes = []

    def scrape() -> None:
        for _ in range(rounds):
            barrier.wait(10)  # all threads send their request at the same moment
            status, body, _ = exporter.get("/metrics", timeout=10)
            scrapes.append(status)
            failures.extend(line for line in body.splitlines()
                            if line.startswith("django_q_exporter_collector_success")
                            and float(line.rsplit(" ", 1)[1]) != 1)

    workers = [threading.Thread(target=scrape) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert scrapes == [200] * threads * rounds
    assert failures == []
