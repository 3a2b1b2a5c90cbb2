"""What the server writes back: content negotiation from a fixed set, header values
that cannot end their line, credentials that fail closed."""

from __future__ import annotations

import base64

import pytest
from prometheus_client import CollectorRegistry, Gauge

from exporter import exposition
from exporter.access import Access
from exporter.app import Response
from exporter.responses import encode

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@pytest.fixture(scope="module")
def registry():
    reg = CollectorRegistry()
    Gauge("django_q_example", "An example.", registry=reg).set(1)
    return reg


@pytest.mark.parametrize("accept, openmetrics", [
    (PROMETHEUS_ACCEPT, True),
    ("application/openmetrics-text", True),
    ("application/openmetrics-text; version=1.0.0; charset=utf-8", True),
    ("application/openmetrics-text;version=1.0.0;q=0", False),
    ("application/openmetrics-text;version=0.0.1", False),
    ("application/openmetrics-text;version=1.0.x", False),
    ("application/openmetrics-text;version=2.0\rSet-Cookie: X=1", False),
    ("application/openmetrics-text;version=<b>hi</b>", False),
    ("application/openmetrics-text;version=", False),
    ("application/openmetrics-text;;;==;,", True),
    ("text/plain", False),
    ("*/*", False),
    (None, False),
])
def test_negotiation_picks_from_a_fixed_set(registry, accept, openmetrics):
    body, content_type = exposition.render(registry, accept)
    if openmetrics:
        assert content_type == exposition.OPENMETRICS_CONTENT_TYPE
        assert body.endswith(b"# EOF\n")
    else:
        assert content_type == exposition.TEXT_CONTENT_TYPE
        assert b"django_q_example 1.0" in body


def test_response_header_values_cannot_end_their_line():
    for value in ("a\rSet-Cookie: x=1", "a\nb", "a\x00b", "caf\xe9"):
        with pytest.raises(ValueError):
            encode(Response(200, b"", headers={"X-Test": value}), False, False)
        with pytest.raises(ValueError):
            encode(Response(200, b"", content_type=value), False, False)
    wire = encode(Response(200, b"ok", headers={"X-Test": "a\tb"}), False, True)
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n") and b"X-Test: a\tb\r\n" in wire
    assert b"Connection: close\r\n" in wire and wire.endswith(b"\r\n\r\nok")


@pytest.mark.parametrize("credential", [
    "Basic " + base64.b64encode("prom:pässword".encode()).decode(),  # UTF-8: fine to decode
    "Basic cHJvbTrpw6k=\u00e9",  # non-ASCII in the base64 itself
    "Basic \u00ff\u00fe",
    "Basic " + base64.b64encode(b"prom:\xff\xfe").decode(),  # not UTF-8
    "Basic !!notbase64",
    "Bearer \u00e9t\u00e9",
])
def test_bad_credentials_are_refused_not_raised(credential):
    access = Access(bearer_token="tok", basic_user="prom", basic_password="secret")
    assert access.allows("/metrics", credential) is False


def test_good_credentials():
    access = Access(bearer_token="tok", basic_user="prom", basic_password="secret")
    assert access.allows("/metrics", "Basic " + base64.b64encode(b"prom:secret").decode())
    assert access.allows("/metrics", "Bearer tok")
