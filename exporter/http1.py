"""HTTP/1.1 request heads (RFC 9112), framed and parsed without I/O.

The server reads bytes; this module decides where a request head ends and
what it says, or which status answers it (``HTTPError``). Everything a
request-smuggling or header-injection attack needs is refused here, by the
RFC's own rules, before a handler sees the request:

* framing: a head ends at the first empty line; up to ``MAX_HEAD_BYTES``
  counted from the first byte after the previous request (stray empty lines
  and the request line included); a request line over ``MAX_REQUEST_LINE``
  is 414, a head over budget 431;
* grammar: method and field names are tokens, field values are visible
  characters, SP and HTAB (no NUL, no bare CR, no obs-fold), the target is
  origin-form or absolute-form with a parseable authority;
* singletons: one Host (required on HTTP/1.1), one Authorization,
  Content-Length a single non-negative decimal (identical repeats fold);
* bodies: the server takes none, so Content-Length above 0 and
  Transfer-Encoding close the connection after the answer.

Why not h11: it implements most of these rules (the tests use it as a second
opinion), but not all of them: it answers a request line over the limit with
431 rather than 414 and does not count stray empty lines against the head
budget (so the framing here would stay), rejects the empty line before a
request line that RFC 9112 §2.2 asks a server to ignore, and accepts
``GET http://[/metrics`` and ``Host: a b``. Used as a second layer it would
add its own cost to every request, more than this parser's whole cost
(bench/http.py measures both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_REQUEST_LINE = 8192
MAX_HEADER_LINE = 8192
MAX_HEADERS = 64
MAX_HEAD_BYTES = 32768

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([!-~]+) HTTP/([0-9])\.([0-9])")
_FIELD_NAME = re.compile(_TOKEN)
#: Controls other than HTAB (RFC 9110 §5.5: field-vchar, SP and HTAB only; obs-text allowed).
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(rb"[0-9]{1,18}")
#: RFC 3986 pchar, "/" and "?" (percent-encoding checked apart, by _BAD_PERCENT).
_PATH_CHARS = r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]"
_QUERY_CHARS = r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]"
_ORIGIN_FORM = re.compile(rf"(/{_PATH_CHARS}*)(?:\?({_QUERY_CHARS}*))?")
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)"
_AUTHORITY = re.compile(rf"{_HOST}(?::[0-9]*)?")
_ABSOLUTE_FORM = re.compile(
    rf"(?i:https?)://{_HOST}(?::[0-9]*)?(/{_PATH_CHARS}*)?(?:\?({_QUERY_CHARS}*))?")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_END_OF_HEAD = re.compile(rb"\n\r?\n")
_EMPTY_LINES = re.compile(rb"(?:\r?\n)*")


class HTTPError(Exception):
    """A request the server answers with ``status`` and then closes the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    path: str
    query: str
    version: str  # "HTTP/1.0" or "HTTP/1.1"
    headers: dict[str, str]  # lower-case names; list fields joined with ", "
    keep_alive: bool
    has_body: bool  # the connection must close after the answer: its bytes are not ours


def frame(buf: bytes | bytearray, scanned: int = 0) -> tuple[int, int] | None:
    """(start, end) of the next request head in ``buf``, or None until more bytes come.

    ``start`` skips the empty lines RFC 9112 §2.2 lets a server ignore before a
    request line; ``end`` is just past the empty line ending the head. Both
    count against ``MAX_HEAD_BYTES``. ``scanned``: bytes already searched in an
    earlier call (the search for the end resumes there, so a client dribbling
    bytes costs linear time, not quadratic)."""
    start = _EMPTY_LINES.match(buf).end()
    if start >= MAX_HEAD_BYTES:
        raise HTTPError(400, "too many empty lines before the request line")
    line_end = buf.find(b"\n", start, start + MAX_REQUEST_LINE + 1)
    if line_end < 0:
        if len(buf) - start > MAX_REQUEST_LINE:
            raise HTTPError(414, "request line too long")
        return None
    found = _END_OF_HEAD.search(buf, max(line_end, scanned - 2, 0))
    if found is None:
        if len(buf) > MAX_HEAD_BYTES:
            raise HTTPError(431, "request head too large")
        return None
    if found.end() > MAX_HEAD_BYTES:
        raise HTTPError(431, "request head too large")
    return start, found.end()


def parse(head: bytes) -> RequestHead:
    """The request in one framed head (``buf[start:end]`` of ``frame``)."""
    lines = head.split(b"\n")
    del lines[-2:]  # the empty line ending the head
    request_line = lines[0][:-1] if lines[0].endswith(b"\r") else lines[0]
    m = _REQUEST_LINE.fullmatch(request_line)
    if m is None:
        raise HTTPError(400, "malformed request line")
    method, raw_target, major, minor = m.groups()
    if major != b"1":
        raise HTTPError(505, "HTTP version not supported")
    # RFC 9110 §6.2: a higher minor version is handled as the highest one we implement.
    version = "HTTP/1.0" if minor == b"0" else "HTTP/1.1"
    if len(lines) - 1 > MAX_HEADERS:
        raise HTTPError(431, "too many header fields")
    headers: dict[str, str] = {}
    seen_twice: set[str] = set()
    for raw in lines[1:]:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > MAX_HEADER_LINE:
            raise HTTPError(431, "header field too large")
        name_b, colon, value_b = raw.partition(b":")
        if not colon or _FIELD_NAME.fullmatch(name_b) is None:
            # Also obs-fold (a line starting with SP/HTAB) and space before the colon:
            # RFC 9112 §5.1-5.2 lets a server reject both with 400.
            raise HTTPError(400, "malformed header field")
        value_b = value_b.strip(b" \t")
        if _BAD_VALUE.search(value_b):
            raise HTTPError(400, "control character in a header field value")
        name = name_b.decode("ascii").lower()
        value = value_b.decode("latin-1")
        if name in headers:
            seen_twice.add(name)
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    if seen_twice:
        _singletons(headers, seen_twice)
    path, query = _target(raw_target.decode("ascii"))
    host = headers.get("host")
    if host is None and version == "HTTP/1.1":
        raise HTTPError(400, "missing Host header")
    if host and _AUTHORITY.fullmatch(host) is None:
        raise HTTPError(400, "malformed Host header")
    has_body = _has_body(headers, version)
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        keep_alive = "keep-alive" in connection
    else:
        keep_alive = "close" not in connection
    return RequestHead(method.decode("ascii"), path, query, version, headers,
                       keep_alive and not has_body, has_body)


def _singletons(headers: dict[str, str], repeated: set[str]) -> None:
    """RFC 9112 §3.2: more than one Host is 400; Authorization has one credential
    (RFC 9110 §11.6.2)."""
    for name in ("host", "authorization"):
        if name in repeated:
            raise HTTPError(400, f"more than one {name.title()} header")


def _has_body(headers: dict[str, str], version: str) -> bool:
    """RFC 9112 §6: Transfer-Encoding (any, on HTTP/1.0 a framing fault) or a
    Content-Length above 0 means request content follows; an invalid
    Content-Length is an unrecoverable framing error (§6.3)."""
    coding = headers.get("transfer-encoding")
    if coding is not None:
        codings = [c.strip().lower() for c in coding.split(",")]
        if not all(_FIELD_NAME.fullmatch(c.encode()) for c in codings):
            raise HTTPError(400, "malformed Transfer-Encoding")
        if version == "HTTP/1.0" or codings[-1] != "chunked" or "chunked" in codings[:-1]:
            raise HTTPError(501, "transfer coding not implemented")
        return True
    length = headers.get("content-length")
    if length is None:
        return False
    values = {v.strip() for v in length.split(",")}
    if len(values) != 1:
        raise HTTPError(400, "conflicting Content-Length values")
    value = values.pop()
    if _DIGITS.fullmatch(value.encode()) is None:
        raise HTTPError(400, "malformed Content-Length")
    return int(value) > 0


def _target(target: str) -> tuple[str, str]:
    """(path, query) of origin-form or absolute-form (RFC 9112 §3.2). ``//x/y`` is a
    path, never an authority."""
    m = (_ORIGIN_FORM if target.startswith("/") else _ABSOLUTE_FORM).fullmatch(target)
    if m is None or "%" in target and _BAD_PERCENT.search(target):
        raise HTTPError(400, "malformed request target")
    return m.group(1) or "/", m.group(2) or ""
