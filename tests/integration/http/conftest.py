"""A real Server on a real loopback socket, with small handlers standing in for the
app's (the HTTP front is what is under test, not django-q), and a TLS certificate."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from exporter.app import Request, Response
from exporter.server import Access, Server


def routes() -> dict:
    """Probe paths answer a line; /metrics 32 KiB, like a real scrape."""
    def answer(request: Request) -> Response:
        return Response(200, f"{request.method} {request.path}\n".encode())

    def metrics(request: Request) -> Response:
        return Response(200, (b"# a metric line of 64 bytes, 512 of them" + b"." * 23 + b"\n")
                        * 512)

    return {"/livez": answer, "/readyz": answer, "/healthz": answer, "/metrics": metrics,
            "/": answer}


@pytest.fixture(scope="module")
def serve():
    """``serve(**kwargs)`` -> a started Server (stopped at the end of the module)."""
    started: list[Server] = []

    def start(max_connections: int = 256, read_timeout: float = 5.0, **kwargs) -> Server:
        server = Server("127.0.0.1", 0, routes(), max_connections, read_timeout, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(serve) -> Server:
    return serve(access=Access(basic_user="prom", basic_password="secret"))


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (EC: handshakes cost little CPU)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], cwd=d, check=True, capture_output=True,
                   timeout=60)
    return d / "cert.pem", d / "key.pem"


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data``, read until the server closes (or ``timeout`` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def statuses(reply: bytes) -> list[int]:
    """Status codes of the responses in ``reply`` (bodies here never start a line
    with "HTTP/1.1 ")."""
    return [int(m) for m in re.findall(rb"(?:^|\n)HTTP/1\.1 ([0-9]{3}) ", reply)]
