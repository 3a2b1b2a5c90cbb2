"""HTTP only: a threaded HTTP/1.1 server with limits, routing and clean shutdown.

Knows nothing of django-q: it maps paths to handlers from ``App.routes()``.
Every response carries Content-Length; keep-alive works; HEAD is GET
without a body; other methods get 405, unknown paths 404; a handler that
raises yields a bare 500 (503 ``false`` for probe paths) and one log line,
never a traceback to the client or a dropped connection.
"""

from __future__ import annotations

import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from exporter import __version__
from exporter.app import Handler, Request, Response

log = logging.getLogger("exporter.http")

MAX_REQUEST_LINE = 8192
MAX_HEADERS = 64
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


class ProbeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], routes: dict[str, Handler],
                 max_connections: int, read_timeout: float) -> None:
        self.routes = routes
        self.read_timeout = read_timeout
        self.slots = threading.BoundedSemaphore(max_connections)
        self.inflight = 0
        self.inflight_cond = threading.Condition()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def wait_inflight(self, timeout: float) -> bool:
        """Wait for requests being answered (not idle keep-alive connections)."""
        with self.inflight_cond:
            return self.inflight_cond.wait_for(lambda: self.inflight == 0, timeout)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"django-q-exporter/{__version__}"
    sys_version = ""
    server: ProbeHTTPServer

    def setup(self) -> None:
        self.timeout = self.server.read_timeout
        super().setup()

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True
            return
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline = ""
            self.request_version = "HTTP/1.1"
            self.command = ""
            self._plain(414, b"request line too long\n", close=True)
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():  # sends its own 400/431/505
            return
        if len(self.headers) > MAX_HEADERS:
            self._plain(431, b"too many headers\n", close=True)
            return
        with self.server.inflight_cond:
            self.server.inflight += 1
        try:
            self._dispatch()
        finally:
            with self.server.inflight_cond:
                self.server.inflight -= 1
                self.server.inflight_cond.notify_all()
        try:
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path if url.path == "/" else url.path.rstrip("/")
        handler = self.server.routes.get(path)
        if self.command not in ("GET", "HEAD"):
            self._plain(405, b"method not allowed\n", extra={"Allow": "GET, HEAD"})
            return
        if handler is None:
            self._plain(404, b"not found\n")
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, path, query, headers)
        try:
            response = handler(request)
        except Exception as exc:
            log.error("handler for %s failed: %s: %s", path, type(exc).__name__, exc)
            if path in PROBE_PATHS:
                response = Response(503, b"false")
            else:
                response = Response(500, b"internal error\n")
        self._send(response)

    def _plain(self, status: int, body: bytes, close: bool = False,
               extra: dict | None = None) -> None:
        self._send(Response(status, body, headers=extra or {}), close=close)

    def _send(self, response: Response, close: bool = False) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in response.headers.items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:
            self.close_connection = True

    def send_error(self, code, message=None, explain=None) -> None:
        # Used by parse_request for malformed input: short plain-text answers.
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.command = self.command if self.command in ("GET", "HEAD") else "GET"
        self._send(Response(code, f"{phrase.lower()}\n".encode()), close=True)

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class Server:
    """Owns the listening socket and the serving thread; stop() is signal-safe to call
    from the main thread (never from the serving thread, which would deadlock)."""

    def __init__(self, host: str, port: int, routes: dict[str, Handler],
                 max_connections: int, read_timeout: float) -> None:
        self.httpd = ProbeHTTPServer((host, port), routes, max_connections, read_timeout)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, name="http", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self, drain: float = 0.7) -> None:
        self.httpd.shutdown()  # stop accepting; returns within poll_interval
        self.httpd.server_close()
        self.httpd.wait_inflight(drain)
