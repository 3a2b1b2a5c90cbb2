"""The lean Prometheus text encoder writes what prometheus_client writes."""

from __future__ import annotations


def test_text_encoder_matches_prometheus_client():
    """Our lean encoder writes exactly the samples prometheus_client's generate_latest does."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.parser import text_string_to_metric_families

    from exporter.exposition import text

    class Fixed:
        def collect(self):
            g = GaugeMetricFamily("g_x", 'help with \\ and\nnewline', labels=["a", "b"])
            g.add_metric(['v"q', "line\nbreak\\"], 1.5)
            g.add_metric(["plain", "x"], float("inf"))
            g.add_metric(["nan", "y"], float("nan"))
            g.add_metric(["big", "z"], 1795888916.036931)
            c = CounterMetricFamily("c_x", "a counter", labels=["k"])
            c.add_metric(["v"], 3)
            h = HistogramMetricFamily("h_x", "a histogram", labels=["f"])
            h.add_metric(["f1"], [("0.1", 1), ("1.0", 2), ("+Inf", 3)], 4.5)
            u = GaugeMetricFamily("u_x", "no labels", value=0)
            # label sets and values seen above again (formatted once per scrape, cached):
            # the cache must tell -0.0 from 0.0, and key orders apart
            again = GaugeMetricFamily("again_x", "repeats", labels=["b", "a"])
            again.add_metric(["line\nbreak\\", 'v"q'], -0.0)
            again.add_metric(["x", "plain"], 0.0)
            again.add_metric(["z", "big"], 1.5)
            return [g, c, h, u, again]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    ours, theirs = text(registry).decode(), generate_latest(registry).decode()

    def parsed(body):
        return [(f.name, f.type, f.documentation,
                 [(s.name, s.labels, repr(s.value)) for s in f.samples])
                for f in text_string_to_metric_families(body)]

    assert parsed(ours) == parsed(theirs)
    assert ours == theirs
