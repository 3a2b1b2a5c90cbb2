"""HTTP only: an asyncio HTTP/1.1 front with limits, auth, TLS and clean shutdown.

Knows nothing of django-q: it maps paths to handlers from ``App.routes()``,
run in threads, and first tries the ``inline`` handlers on the event loop
(probes answered from memory: no thread hop; None sends the request on to
its thread).

Why asyncio in front of threads: an idle or slow client (keep-alive, slow
loris, a flood of open sockets) costs a coroutine, never a thread, so probes
keep being answered. A connection reaches a worker thread only once a whole
request head has arrived within ``read_timeout``. When the connection cap is
reached, the longest-waiting idle connection is closed to make room, so a
flood of idle sockets cannot lock the kubelet out.

Every response carries Content-Length; keep-alive and pipelining follow
HTTP/1.0 and 1.1 rules; HEAD is GET without a body; other methods get 405,
unknown paths 404; oversized request lines 414 and headers 431; a handler
that raises yields a bare 500 (503 ``false`` on probe paths) and one log
line, never a traceback to the client.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gc
import hmac
import itertools
import logging
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from exporter import __version__
from exporter.app import Handler, InlineHandler, Request, Response

log = logging.getLogger("exporter.http")

MAX_REQUEST_LINE = 8192
MAX_HEADER_LINE = 8192
MAX_HEADERS = 64
MAX_HEAD_BYTES = 32768
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
#: An idle connection younger than this is not evicted: its request bytes may simply
#: not have been read yet (a burst of accepts can delay the first read).
EVICT_MIN_IDLE = 0.05
SERVER_HEADER = f"django-q-exporter/{__version__}"


@dataclass(frozen=True)
class Access:
    """Who may read which paths. Secrets are compared in constant time."""

    bearer_token: str | None = None
    basic_user: str | None = None
    basic_password: str | None = None
    protect_probes: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_token or self.basic_password)

    def allows(self, path: str, authorization: str | None) -> bool:
        if not self.enabled or (path in PROBE_PATHS and not self.protect_probes):
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.bearer_token:
            return hmac.compare_digest(value.encode(), self.bearer_token.encode())
        if scheme.lower() == "basic" and self.basic_password:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user_ok = hmac.compare_digest(user.encode(), (self.basic_user or "").encode())
            password_ok = hmac.compare_digest(password.encode(), self.basic_password.encode())
            return user_ok and password_ok
        return False

    def challenge(self) -> str:
        return 'Basic realm="django-q-exporter"' if self.basic_password else "Bearer"


class _HTTPError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class _Head:
    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


def encode(response: Response, head_only: bool, close: bool) -> bytes:
    lines = [_status_line(response.status)]
    headers = {"Server": SERVER_HEADER, "Content-Type": response.content_type,
               "Content-Length": str(len(response.body)), "Cache-Control": "no-store"}
    headers.update(response.headers)
    if close:
        headers["Connection"] = "close"
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    lines.append(b"\r\n")
    if not head_only:
        lines.append(response.body)
    return b"".join(lines)


class Server:
    """Owns the event loop thread, the listening socket and the handler pools.

    ``stop()`` is called from the main thread (never from the serving thread,
    which is what deadlocked the original server).
    """

    def __init__(self, host: str, port: int, routes: dict[str, Handler], max_connections: int,
                 read_timeout: float, access: Access | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 inline: dict[str, InlineHandler] | None = None) -> None:
        self.host = host
        self.requested_port = port
        self.routes = routes
        self.inline = inline or {}
        self.max_connections = _fd_bounded(max_connections)
        self.read_timeout = read_timeout
        self.access = access or Access()
        self.ssl_context = ssl_context
        # Probes never queue behind slow /metrics collections.
        self.probe_pool = ThreadPoolExecutor(8, thread_name_prefix="http-probe")
        self.other_pool = ThreadPoolExecutor(4, thread_name_prefix="http")
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._conns: dict[int, asyncio.StreamWriter] = {}
        self._idle: OrderedDict[int, tuple[float, asyncio.StreamWriter]] = OrderedDict()
        self._ids = itertools.count()
        self._inflight = 0
        self._drained: asyncio.Event | None = None

    # lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def start(self) -> None:
        # Everything allocated so far (Django, settings, the app) lives as long as the
        # process: move it out of the cyclic GC's reach, so a full collection walks
        # only per-request objects (measured: full collections over the loaded
        # Django stack stalled probes by up to ~90 ms).
        gc.collect()
        gc.freeze()
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join(1.0)
            self.probe_pool.shutdown(wait=False)
            self.other_pool.shutdown(wait=False)
            raise self._start_error

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        # Failed TLS handshakes and resets are the client's problem: one debug line,
        # no traceback in the log.
        self.loop.set_exception_handler(
            lambda loop, ctx: log.debug("connection: %s", ctx.get("exception") or ctx["message"]))
        try:
            self._server = self.loop.run_until_complete(asyncio.start_server(
                self._connection, self.host, self.requested_port, limit=MAX_HEAD_BYTES,
                ssl=self.ssl_context, backlog=512,
                ssl_handshake_timeout=self.read_timeout if self.ssl_context else None))
            self._drained = asyncio.Event()
        except BaseException as exc:  # bind errors are reported by start()
            self._start_error = exc
            self.loop.close()  # closed here, not by the garbage collector at exit
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def stop(self, drain: float = 0.7) -> None:
        """Stop accepting, let in-flight requests finish (up to ``drain`` s), close."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(drain), self.loop)
        try:
            future.result(drain + 0.5)
        except Exception as exc:
            log.debug("shutdown: %s", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(1.0)
        self.probe_pool.shutdown(wait=False, cancel_futures=True)
        self.other_pool.shutdown(wait=False, cancel_futures=True)

    async def _shutdown(self, drain: float) -> None:
        assert self._server is not None and self._drained is not None
        self._server.close()
        if self._inflight:
            self._drained.clear()
            try:
                await asyncio.wait_for(self._drained.wait(), drain)
            except TimeoutError:
                log.warning("stopping with %d request(s) still running", self._inflight)
        for writer in list(self._conns.values()):
            writer.close()

    # connections ----------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        conn_id = next(self._ids)
        if len(self._conns) >= self.max_connections and not self._evict_idle():
            writer.write(encode(Response(503, b"too many connections\n"), False, True))
            writer.close()
            return
        self._conns[conn_id] = writer
        try:
            while True:
                self._idle[conn_id] = (self.loop.time(), writer)
                try:
                    head = await asyncio.wait_for(self._read_head(reader), self.read_timeout)
                except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                    return
                except _HTTPError as exc:
                    await self._write(writer, encode(
                        Response(exc.status, f"{exc}\n".encode()), False, True))
                    return
                finally:
                    self._idle.pop(conn_id, None)
                if head is None:
                    return
                keep = head.keep_alive
                response = await self._respond(head)
                if response.status in (400, 405, 413):
                    keep = False  # we do not read request bodies: do not reuse the stream
                await self._write(writer, encode(response, head.method == "HEAD", not keep))
                if not keep:
                    return
        except Exception as exc:  # never let one connection take the server down
            log.debug("connection error: %s: %s", type(exc).__name__, exc)
        finally:
            self._idle.pop(conn_id, None)
            self._conns.pop(conn_id, None)
            writer.close()

    def _evict_idle(self) -> bool:
        """Close the connection that has waited longest for a request, if it has
        waited at least EVICT_MIN_IDLE."""
        if not self._idle:
            return False
        victim_id, (since, victim) = next(iter(self._idle.items()))
        if self.loop.time() - since < EVICT_MIN_IDLE:
            return False
        del self._idle[victim_id]
        self._conns.pop(victim_id, None)
        victim.close()
        return True

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionError:
            pass

    async def _read_head(self, reader: asyncio.StreamReader) -> _Head | None:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None  # clean close between requests
            raise _HTTPError(400, "incomplete request line") from None
        except asyncio.LimitOverrunError:
            raise _HTTPError(414, "request line too long") from None
        if len(line) > MAX_REQUEST_LINE:
            raise _HTTPError(414, "request line too long")
        while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between requests (RFC 9112)
            line = await reader.readuntil(b"\n")
        try:
            text = line.decode("ascii").strip()
        except UnicodeDecodeError:
            raise _HTTPError(400, "request line is not ASCII") from None
        parts = text.split(" ")
        if len(parts) != 3 or not parts[0].isalpha() or "\x00" in text:
            raise _HTTPError(400, "malformed request line")
        method, target, version = parts
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            raise _HTTPError(505, "HTTP version not supported")
        headers: dict[str, str] = {}
        total = 0
        while True:
            try:
                raw = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                raise _HTTPError(431, "header line too long") from None
            total += len(raw)
            if raw in (b"\r\n", b"\n"):
                break
            if len(raw) > MAX_HEADER_LINE or total > MAX_HEAD_BYTES:
                raise _HTTPError(431, "headers too large")
            if len(headers) >= MAX_HEADERS:
                raise _HTTPError(431, "too many headers")
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name.strip() or name != name.strip():
                raise _HTTPError(400, "malformed header")
            headers[name.strip().lower()] = value.strip()
        return _Head(method.upper(), target, version, headers)

    async def _respond(self, head: _Head) -> Response:
        if head.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers={"Allow": "GET, HEAD"})
        if head.headers.get("transfer-encoding") or head.headers.get("content-length",
                                                                      "0") not in ("", "0"):
            return Response(400, b"request bodies are not accepted\n")
        url = urlsplit(head.target)
        path = url.path if url.path == "/" else url.path.rstrip("/")
        handler = self.routes.get(path)
        if handler is None:
            return Response(404, b"not found\n")
        if not self.access.allows(path, head.headers.get("authorization")):
            return Response(401, b"unauthorized\n",
                            headers={"WWW-Authenticate": self.access.challenge()})
        request = Request(head.method, path, dict(parse_qsl(url.query, keep_blank_values=True)),
                          head.headers)
        fast = self.inline.get(path)
        if fast is not None:
            answered = _call(fast, request, path)
            if answered is not None:
                return answered
        pool = self.probe_pool if path in PROBE_PATHS else self.other_pool
        self._inflight += 1
        try:
            return await self.loop.run_in_executor(pool, _call, handler, request, path)
        finally:
            self._inflight -= 1
            if not self._inflight and self._drained is not None:
                self._drained.set()


def _fd_bounded(wanted: int) -> int:
    """No more connections than file descriptors allow (keeping 64 for everything else)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and wanted > soft - 64:
        log.warning("max-connections %d exceeds the file descriptor limit %d: using %d",
                    wanted, soft, max(8, soft - 64))
        return max(8, soft - 64)
    return wanted


def _call(handler: Callable[[Request], Response | None], request: Request,
          path: str) -> Response | None:
    try:
        return handler(request)
    except Exception as exc:
        log.error("handler for %s failed: %s: %s", path, type(exc).__name__, exc)
        if path in PROBE_PATHS:
            return Response(503, b"false")
        return Response(500, b"internal error\n")
