"""HTTP only: an asyncio HTTP/1.1 front with limits, auth, TLS and clean shutdown.

Knows nothing of django-q: it maps paths to handlers from ``App.routes()``,
run in threads, and first tries the ``inline`` handlers on the event loop
(probes answered from memory: no thread hop; None sends the request on to
its thread). Request heads are framed and parsed by ``exporter.http1``
(RFC 9112; its limits and answers are listed in docs/security.md); TLS runs
in ``exporter.streams``.

Why asyncio in front of threads: an idle or slow client (keep-alive, slow
loris, a flood of open sockets) costs a coroutine, never a thread, so probes
keep being answered; a connection that has sent nothing costs less still (a
transport and a ``_Waiting`` protocol: no task, no stream, no TLS state). A
connection reaches a worker thread only once a whole request head has
arrived within ``read_timeout`` of its accept or of the previous answer (the
TLS handshake included). Every client state is bounded:

* at ``max_connections`` the connection idle longest is closed to make
  room, else one blocked writing for a second or more;
* a client that does not read its answers is dropped after ``read_timeout``;
* when neither frees a slot, up to ``PROBE_RESERVE`` more connections are
  taken for the probe paths only (one answer each, a short read deadline),
  so no client behaviour locks the kubelet out;
* ``accept()`` failing at the descriptor limit is logged once per burst and
  idle connections are closed to free descriptors.

Every response carries Content-Length; keep-alive and pipelining follow
HTTP/1.0 and 1.1 rules; HEAD is GET without a body; methods other than GET
and HEAD get 405 (501 when unknown), unknown paths 404; a handler that
raises yields a bare 500 (503 ``false`` on probe paths) and one log line,
never a traceback to the client.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import logging
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

from exporter import http1
from exporter.access import PROBE_PATHS, Access
from exporter.app import Handler, InlineHandler, Request, Response
from exporter.responses import encode, error
from exporter.slots import Slots
from exporter.streams import PlainStream, TLSStream

log = logging.getLogger("exporter.http")

#: Connections beyond --max-connections kept for the probe paths (one answer each).
PROBE_RESERVE = 16
#: Seconds a connection in the probe reserve may take to send its request.
PROBE_RESERVE_TIMEOUT = 2.0
#: Pipelined requests answered before the connection yields the event loop to others.
PIPELINE_BATCH = 16
#: Answered when a client sends a known method other than GET and HEAD (405); any
#: other method is not implemented (501, RFC 9110 §15.6.2).
KNOWN_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
#: A burst of failed accept() calls is logged once, then summed up after this long.
ACCEPT_BURST_SECONDS = 10.0
#: When open connections fall below half of a peak of at least this many, memory is
#: reclaimed: asyncio's connection objects hold reference cycles, and with the start-up
#: heap frozen out of the collector a full collection may not come for hours, which
#: kept a flood's memory resident long after it ended.
RECLAIM_PEAK = 256


class _Waiting(asyncio.Protocol):
    """A connection that has sent nothing yet: its transport and this object, no task,
    no stream, no TLS state, so a flood of silent sockets costs little. Its first bytes
    turn it into a stream served by ``Server._serve``."""

    __slots__ = ("server", "conn_id", "pool", "transport", "since")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn_id = -1
        self.pool: Slots | None = None  # None: refused, or handed on to a stream
        self.transport: asyncio.Transport | None = None
        self.since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._admit(self)

    def data_received(self, data: bytes) -> None:
        self.server._begin(self, data)

    def eof_received(self) -> bool:
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._gone(self)

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()

    def abort(self) -> None:
        assert self.transport is not None
        self.transport.abort()


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
        self.write_timeout = read_timeout
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
        self._main = Slots(self.max_connections)
        self._reserve = Slots(PROBE_RESERVE)
        self._ids = itertools.count()
        self._inflight = 0
        self._drained: asyncio.Event | None = None
        self._accept_failures = 0
        self._accept_freed_at = float("-inf")
        self._peak = 0  # most connections open since memory was last reclaimed
        self._reclaim_pending = False

    # lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def open_connections(self) -> int:
        return len(self._main.conns) + len(self._reserve.conns)

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
        self.loop.set_exception_handler(self._loop_exception)
        try:
            self._server = self.loop.run_until_complete(self.loop.create_server(
                lambda: _Waiting(self), self.host, self.requested_port, backlog=512))
            self.loop.call_soon(self._sweep)
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
        for pool in (self._main, self._reserve):
            for stream in list(pool.conns.values()):
                stream.close()

    # the loop's errors ---------------------------------------------------------------------
    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if context.get("message", "").startswith("socket.accept() out of system resource"):
            self._accept_failed(context.get("exception"))
            return
        # Resets and failed TLS handshakes are the client's problem: one debug line.
        log.debug("connection: %s", context.get("exception") or context["message"])

    def _accept_failed(self, exc: BaseException | None) -> None:
        """asyncio pauses accepting for a second after such a failure (it reports one
        per pending connection: hundreds at once); closing a few idle connections,
        once per pause, lets the retry succeed."""
        self._accept_failures += 1
        now = self.loop.time()
        freed = 0
        if now - self._accept_freed_at >= 1.0:
            self._accept_freed_at = now
            while freed < 16 and self._main.evict(now, min_idle=0.0):
                freed += 1
        if self._accept_failures == 1:
            log.warning("accept() failed: %s (%d connections open); closed %d idle "
                        "connection(s), accepting again in 1 s", exc,
                        self.open_connections(), freed)
            self.loop.call_later(ACCEPT_BURST_SECONDS, self._accept_burst_over)

    def _accept_burst_over(self) -> None:
        if self._accept_failures > 1:
            log.warning("accept() failed %d times in %.0f s", self._accept_failures,
                        ACCEPT_BURST_SECONDS)
        self._accept_failures = 0

    # connections ----------------------------------------------------------------------------
    def _admit(self, waiting: _Waiting) -> None:
        """A new connection takes a slot, evicts one, takes a probe slot, or is refused."""
        assert waiting.transport is not None
        now = self.loop.time()
        pool = self._main
        if pool.full() and not pool.evict(now):
            pool = self._reserve
            if pool.full() and not pool.evict(now):
                waiting.transport.write(error(503, "too many connections"))
                waiting.transport.close()
                return
        waiting.conn_id, waiting.pool, waiting.since = next(self._ids), pool, now
        pool.conns[waiting.conn_id] = waiting
        pool.idle[waiting.conn_id] = now
        self._peak = max(self._peak, len(self._main.conns))

    def _begin(self, waiting: _Waiting, data: bytes) -> None:
        """First bytes: from here on the connection is a stream with a task."""
        pool, transport = waiting.pool, waiting.transport
        if pool is None or transport is None:
            return  # refused: its bytes are not read
        waiting.pool = None
        pool.idle.pop(waiting.conn_id, None)
        reader = asyncio.StreamReader(limit=http1.MAX_HEAD_BYTES)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(data)
        writer = asyncio.StreamWriter(transport, protocol, reader, self.loop)
        stream = (TLSStream(reader, writer, self.ssl_context) if self.ssl_context
                  else PlainStream(reader, writer))
        pool.conns[waiting.conn_id] = stream
        self.loop.create_task(self._serve(waiting.conn_id, pool, stream, waiting.since))

    def _gone(self, waiting: _Waiting) -> None:
        """Closed before sending anything (by the client, eviction or the deadline)."""
        if waiting.pool is not None:
            waiting.pool.forget(waiting.conn_id)
            waiting.pool = None
            self._closed()

    def _sweep(self) -> None:
        """Close connections that sent nothing within their read deadline (those that
        did have a deadline of their own), twice a second."""
        now = self.loop.time()
        self._main.expire(now, self.read_timeout)
        self._reserve.expire(now, min(self.read_timeout, PROBE_RESERVE_TIMEOUT))
        self.loop.call_later(0.5, self._sweep)

    def _closed(self) -> None:
        if (self._peak >= RECLAIM_PEAK and len(self._main.conns) * 2 < self._peak
                and not self._reclaim_pending):
            self._reclaim_pending = True
            self.loop.call_later(1.0, self._reclaim)

    async def _serve(self, conn_id: int, pool: Slots, stream: PlainStream,
                     since: float) -> None:
        reserved = pool is self._reserve
        deadline = min(self.read_timeout, PROBE_RESERVE_TIMEOUT) if reserved \
            else self.read_timeout
        buf = bytearray()
        answered = 0
        try:
            while True:
                pool.idle[conn_id] = since
                try:
                    async with asyncio.timeout_at(since + deadline):
                        framed = await self._read_head(stream, buf)
                except (TimeoutError, ConnectionError, ssl.SSLError):
                    return
                except http1.HTTPError as exc:
                    await self._write(stream, error(exc.status, str(exc)), conn_id, pool)
                    return
                finally:
                    pool.idle.pop(conn_id, None)
                if framed is None:
                    return
                start, end = framed
                try:
                    head = http1.parse(bytes(buf[start:end]))
                except http1.HTTPError as exc:
                    await self._write(stream, error(exc.status, str(exc)), conn_id, pool)
                    return
                del buf[:end]
                keep = head.keep_alive and not reserved
                response = await self._respond(head, reserved)
                try:
                    data = encode(response, head.method == "HEAD", not keep)
                except ValueError as exc:
                    log.error("%s: %s", head.path, exc)
                    data, keep = error(500, "internal error"), False
                if not await self._write(stream, data, conn_id, pool) or not keep:
                    return
                answered += 1
                if buf and answered % PIPELINE_BATCH == 0:
                    await asyncio.sleep(0)  # pipelined requests: let other clients in
                since = self.loop.time()
        except Exception as exc:  # never let one connection take the server down
            log.debug("connection error: %s: %s", type(exc).__name__, exc)
        finally:
            pool.forget(conn_id)
            stream.close()
            self._closed()

    def _reclaim(self) -> None:
        """Free the closed connections' cycles now, and hand freed heap pages back."""
        unreachable = gc.collect()
        _malloc_trim()
        log.debug("reclaimed memory after %d connections: %d objects", self._peak, unreachable)
        self._peak = len(self._main.conns)
        self._reclaim_pending = False

    @staticmethod
    async def _read_head(stream: PlainStream, buf: bytearray) -> tuple[int, int] | None:
        """Read until ``buf`` holds a whole request head; None on a clean close
        between requests."""
        scanned = 0
        while True:
            framed = http1.frame(buf, scanned)
            if framed is not None:
                return framed
            scanned = len(buf)
            data = await stream.recv()
            if not data:
                if buf.strip(b"\r\n"):
                    raise http1.HTTPError(400, "incomplete request head")
                return None
            buf += data

    async def _write(self, stream: PlainStream, data: bytes, conn_id: int,
                     pool: Slots) -> bool:
        """False if the client is gone or did not take the answer within write_timeout
        (then it is dropped: a client that never reads must not hold a slot)."""
        try:
            stream.send(data)
            if stream.closing():
                return False
            if stream.buffered() <= 65536:
                return True
            pool.writing[conn_id] = self.loop.time()
            async with asyncio.timeout(self.write_timeout):
                await stream.drain()
            return True
        except TimeoutError:
            log.debug("dropped a client that did not read its answer in %.0f s",
                      self.write_timeout)
            stream.abort()
            return False
        except (ConnectionError, ssl.SSLError):
            return False
        finally:
            pool.writing.pop(conn_id, None)

    async def _respond(self, head: http1.RequestHead, reserved: bool) -> Response:
        if head.method not in ("GET", "HEAD"):
            if head.method in KNOWN_METHODS:
                return Response(405, b"method not allowed\n", headers={"Allow": "GET, HEAD"})
            return Response(501, b"method not implemented\n")
        if head.has_body:
            return Response(400, b"request bodies are not accepted\n")
        path = head.path if head.path == "/" else head.path.rstrip("/")
        if reserved and path not in PROBE_PATHS:
            return Response(503, b"too many connections\n")
        handler = self.routes.get(path)
        if handler is None:
            return Response(404, b"not found\n")
        if not self.access.allows(path, head.headers.get("authorization")):
            return Response(401, b"unauthorized\n",
                            headers={"WWW-Authenticate": self.access.challenge()})
        request = Request(head.method, path, dict(parse_qsl(head.query, keep_blank_values=True)),
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


def _malloc_trim() -> None:
    """glibc keeps freed heap pages resident until asked (elsewhere: nothing to do)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _fd_bounded(wanted: int) -> int:
    """No more connections than file descriptors allow (keeping 64 for everything else,
    and the probe reserve)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = soft - 64 - PROBE_RESERVE
    if soft != resource.RLIM_INFINITY and wanted > room:
        log.warning("max-connections %d exceeds the file descriptor limit %d: using %d",
                    wanted, soft, max(8, room))
        return max(8, room)
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
