"""Request heads by RFC 9112 / RFC 9110, case by case, without a socket.

Each case names the rule it checks. h11 (the sans-IO parser under uvicorn and
httpx) gives a second opinion: wherever it decides, accept or reject, ours
must decide the same.
"""

from __future__ import annotations

import h11
import pytest

from exporter import http1
from exporter.http1 import HTTPError

H = b"Host: x\r\n"


def parsed(data: bytes) -> http1.RequestHead:
    framed = http1.frame(data)
    assert framed is not None, data
    return http1.parse(data[framed[0]:framed[1]])


def answer(data: bytes) -> int:
    """The status the server answers a request with: 200 if the head is accepted."""
    try:
        parsed(data)
    except HTTPError as exc:
        return exc.status
    return 200


# (name, request, our status): the rule is in the name.
CASES = [
    ("plain GET", b"GET /livez HTTP/1.1\r\n" + H + b"\r\n", 200),
    ("HTTP/1.0 needs no Host", b"GET /livez HTTP/1.0\r\n\r\n", 200),
    ("LF alone ends lines (9112 2.2 MAY)", b"GET /livez HTTP/1.1\n" + H.replace(b"\r", b"") +
     b"\n", 200),
    ("absolute-form (9112 3.2.2)", b"GET http://x:1/metrics?a=1 HTTP/1.1\r\n" + H + b"\r\n", 200),
    ("identical Content-Length repeats fold (9110 8.6)",
     b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n", 200),
    ("Content-Length list of one value (9110 8.6)",
     b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0, 0\r\n\r\n", 200),
    ("empty Host is valid (9110 7.2)", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 200),
    ("obs-text in a value (9110 5.5)", b"GET / HTTP/1.1\r\n" + H + b"X: caf\xe9\r\n\r\n", 200),
    ("HTTP/1.2 handled as 1.1 (9110 6.2)", b"GET / HTTP/1.2\r\n" + H + b"\r\n", 200),
    # smuggling and framing (9112 6)
    ("CL.CL differing (9112 6.3)",
     b"GET /livez HTTP/1.1\r\n" + H + b"Content-Length: 44\r\nContent-Length: 0\r\n\r\n", 400),
    ("Content-Length list differing (9110 8.6)",
     b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0, 5\r\n\r\n", 400),
    ("empty Content-Length (9112 6.3)",
     b"GET / HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n", 400),
    ("signed Content-Length", b"GET / HTTP/1.1\r\n" + H + b"Content-Length: +0\r\n\r\n", 400),
    ("negative Content-Length", b"GET / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("chunked then empty Transfer-Encoding",
     b"GET / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n", 400),
    ("unknown transfer coding (9112 6.1: 501)",
     b"GET / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    ("chunked not last (9112 6.1)",
     b"GET / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 501),
    ("Transfer-Encoding on HTTP/1.0 (9112 6.1)",
     b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    ("Transfer-Encoding with a space in a coding",
     b"GET / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chun ked\r\n\r\n", 400),
    # field syntax (9112 5, 9110 5.5)
    ("bare CR in a value (9112 2.2)", b"GET / HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n", 400),
    ("NUL in a value (9110 5.5)", b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n", 400),
    ("other control in a value", b"GET / HTTP/1.1\r\n" + H + b"X: a\x1bb\r\n\r\n", 400),
    ("non-token field name", b"GET / HTTP/1.1\r\n" + H + b"X(y): a\r\n\r\n", 400),
    ("non-ASCII field name", b"GET / HTTP/1.1\r\n" + H + b"X\xe9: a\r\n\r\n", 400),
    ("space before the colon (9112 5.1)", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("obs-fold (9112 5.2)", b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n b\r\n\r\n", 400),
    ("empty field name", b"GET / HTTP/1.1\r\n" + H + b": a\r\n\r\n", 400),
    # Host (9112 3.2)
    ("HTTP/1.1 without Host", b"GET /livez HTTP/1.1\r\n\r\n", 400),
    ("two Host headers", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    ("two Host headers on HTTP/1.0", b"GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    ("malformed Host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("two Authorization headers (9110 11.6.2)",
     b"GET / HTTP/1.1\r\n" + H + b"Authorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
     400),
    # request line (9112 3)
    ("bare CR in the target", b"GET /met\rrics HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("TAB in the target", b"GET /met\trics HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("non-ASCII target", b"GET /\xff\xfe HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("markup in the target", b"GET /<script> HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("broken percent-encoding", b"GET /a%zz HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("unparseable authority", b"GET http://[/metrics HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("userinfo in the authority", b"GET http://u@x/metrics HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("authority-form outside CONNECT", b"GET x:80 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("asterisk-form outside OPTIONS", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("two spaces", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("lower-case HTTP-name (9112 2.3)", b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    ("no version", b"GET /livez\r\n\r\n", 400),
    ("HTTP/2.0 in HTTP/1 framing", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("HTTP/0.9 with a version", b"GET / HTTP/0.9\r\n" + H + b"\r\n", 505),
    ("NUL in the method", b"G\x00T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    # limits (ours; 414 and 431 are RFC 9110 15.5.15 and RFC 6585 5)
    ("request line over 8 KiB", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("request line over 8 KiB after empty lines",
     b"\r\n" * 10 + b"GET /" + b"a" * 16_000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("one header line over 8 KiB", b"GET / HTTP/1.1\r\n" + H + b"X: " + b"b" * 9000 +
     b"\r\n\r\n", 431),
    ("65 repeated headers are 65 headers", b"GET / HTTP/1.1\r\n" + H + b"X-Dup: y\r\n" * 64 +
     b"\r\n", 431),
    ("head over 32 KiB including the request line",
     b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\n" + H + (b"X: " + b"c" * 6250 + b"\r\n") * 4 +
     b"\r\n", 431),
    ("head over 32 KiB including leading empty lines",
     b"\r\n" * 8000 + b"GET / HTTP/1.1\r\n" + H + (b"X: " + b"c" * 6000 + b"\r\n") * 3 + b"\r\n",
     431),
    ("empty lines alone over the head budget", b"\r\n" * 20_000 + b"GET / HTTP/1.1\r\n" + H +
     b"\r\n", 400),
]


@pytest.mark.parametrize("name, request_bytes, status", CASES, ids=[c[0] for c in CASES])
def test_rfc_answer(name, request_bytes, status):
    assert answer(request_bytes) == status


def _h11_verdict(data: bytes) -> str | None:
    """'accept' or 'reject' as h11 decides; None where h11 has no opinion on what we
    check (limits of our own, versions it leaves to the server)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return "reject"
    if not isinstance(event, h11.Request):
        return None
    return "accept"


@pytest.mark.parametrize("name, request_bytes, status", CASES, ids=[c[0] for c in CASES])
def test_h11_agrees(name, request_bytes, status):
    """Where h11 rejects, we reject; where we accept, h11 accepts. (We are stricter on
    purpose in places h11 leaves open: target characters, Host syntax, lower-case
    method names are fine for both and answered 501 later, and versions above 1.)"""
    verdict = _h11_verdict(request_bytes)
    ours = "accept" if status == 200 else "reject"
    if verdict == "reject":
        assert ours == "reject"
    if ours == "accept":
        assert verdict == "accept"


def test_smuggled_second_request_is_never_framed():
    """CL.CL: the whole stream ends at the first head's error; the bytes after it
    (a second request to a smuggler) are never parsed as a request."""
    stream = (b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nContent-Length: 0"
              b"\r\n\r\nGET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    start, end = http1.frame(stream)
    assert stream[end:].startswith(b"GET /healthz")
    with pytest.raises(HTTPError) as caught:
        http1.parse(stream[start:end])
    assert caught.value.status == 400


def test_body_and_keep_alive():
    head = parsed(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\n")
    assert head.has_body and not head.keep_alive
    head = parsed(b"GET / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
    assert head.has_body and not head.keep_alive
    assert parsed(b"GET / HTTP/1.1\r\n" + H + b"\r\n").keep_alive
    assert not parsed(b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n").keep_alive
    assert not parsed(b"GET / HTTP/1.0\r\n\r\n").keep_alive
    assert parsed(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive


def test_lower_case_method_is_kept_as_sent():
    """Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET."""
    assert parsed(b"get / HTTP/1.1\r\n" + H + b"\r\n").method == "get"


def test_targets():
    assert parsed(b"GET //evil/metrics HTTP/1.1\r\n" + H + b"\r\n").path == "//evil/metrics"
    head = parsed(b"GET /healthz?verbose=1&a=%20 HTTP/1.1\r\n" + H + b"\r\n")
    assert (head.path, head.query) == ("/healthz", "verbose=1&a=%20")
    head = parsed(b"GET HTTP://x/livez HTTP/1.1\r\n" + H + b"\r\n")
    assert (head.path, head.query) == ("/livez", "")
    assert parsed(b"GET http://[::1]:9847 HTTP/1.1\r\n" + H + b"\r\n").path == "/"


def test_repeated_list_headers_join():
    head = parsed(b"GET / HTTP/1.1\r\n" + H + b"Accept: a/b\r\nAccept: c/d\r\n\r\n")
    assert head.headers["accept"] == "a/b, c/d"


def test_framing_waits_for_more_bytes():
    assert http1.frame(b"") is None
    assert http1.frame(b"\r\n\r\n") is None  # stray empty lines, no request yet
    assert http1.frame(b"GET / HTTP/1.1\r\nHost: x\r\n") is None
    assert http1.frame(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET") == (0, 27)
    assert http1.frame(b"\r\n\nGET / HTTP/1.0\n\n") == (3, 19)
    # A dribbled head is found however it was cut.
    whole = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    for cut in range(1, len(whole)):
        scanned = len(whole[:cut])
        assert http1.frame(whole[:cut]) is None
        assert http1.frame(whole, scanned) == (0, len(whole))
