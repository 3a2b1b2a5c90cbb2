"""The scrape runner reports each collector's own time (the speed itself is measured in
bench/)."""

import time
from concurrent.futures import ThreadPoolExecutor


class Sleeper:
    """A collector that takes ``seconds`` and yields nothing."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds

    def collect(self):
        time.sleep(self.seconds)
        return []


def test_collector_duration_is_each_collectors_own_time():
    """django_q_exporter_collector_duration_seconds is the time that collector took, not
    the time until the slowest collector of the scrape finished."""
    from exporter.collectors.runner import ScrapeRunner

    with ThreadPoolExecutor(4) as pool:
        runner = ScrapeRunner([Sleeper("fast", 0.0), Sleeper("slow", 0.4)], 5, pool, "x")
        families = runner.collect()
    took = {s.labels["collector"]: s.value for f in families
            if f.name == "django_q_exporter_collector_duration_seconds" for s in f.samples}
    assert took["slow"] >= 0.4
    assert took["fast"] < 0.2
