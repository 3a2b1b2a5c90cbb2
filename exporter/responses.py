"""Responses on the wire: status line, headers that cannot be forged, body."""

from __future__ import annotations

import re
from http import HTTPStatus

from exporter import __version__
from exporter.app import Response

SERVER_HEADER = f"django-q-exporter/{__version__}"
_UNSAFE_HEADER_VALUE = re.compile(r"[^\t\x20-\x7e]")


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


def encode(response: Response, head_only: bool, close: bool) -> bytes:
    """The response on the wire. Raises ValueError for a header value that could end
    its line (CR, LF, NUL, other controls) or is not ASCII: whatever the handler
    put there, it never becomes a header of its own."""
    lines = [_status_line(response.status)]
    headers = {"Server": SERVER_HEADER, "Content-Type": response.content_type,
               "Content-Length": str(len(response.body)), "Cache-Control": "no-store"}
    headers.update(response.headers)
    if close:
        headers["Connection"] = "close"
    for name, value in headers.items():
        if _UNSAFE_HEADER_VALUE.search(value) or _UNSAFE_HEADER_VALUE.search(name):
            raise ValueError(f"unsafe response header {name!r}")
        lines.append(f"{name}: {value}\r\n".encode("ascii"))
    lines.append(b"\r\n")
    if not head_only:
        lines.append(response.body)
    return b"".join(lines)


def error(status: int, reason: str) -> bytes:
    """A short plain-text answer that closes the connection."""
    return encode(Response(status, f"{reason}\n".encode()), False, True)
