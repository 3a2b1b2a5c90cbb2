"""Byte streams for the HTTP front: plain TCP, or TLS over it in memory.

Why TLS is done here instead of by ``asyncio.start_server(ssl=...)``: asyncio
gives every accepted TLS connection a 256 KiB receive buffer before its first
byte arrives, and runs the handshake before the server sees the connection
(outside its connection cap and deadlines). Here a TLS connection costs what
a plain one costs until its first byte arrives; then an ``ssl.SSLObject``
over two small ``MemoryBIO``s runs the handshake inside the server's read
deadline, and the connection counts against the cap from its accept on.
"""

from __future__ import annotations

import asyncio
import ssl

#: Bytes asked of the socket (and of the TLS layer) per read.
READ_SIZE = 65536
#: First byte of a TLS record carrying a handshake message (a ClientHello).
_TLS_HANDSHAKE = 0x16
PLAIN_HTTP_TO_TLS = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"Content-Length: 45\r\nConnection: close\r\n\r\n"
                     b"this port speaks HTTPS: use an https:// URL\r\n")


class PlainStream:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def recv(self) -> bytes:
        """Some bytes; b"" at end of stream."""
        return await self.reader.read(READ_SIZE)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def closing(self) -> bool:
        return self.writer.transport.is_closing()

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.transport.abort()


class TLSStream(PlainStream):
    """TLS on top of a plain stream; the SSL object exists only once bytes arrive."""

    __slots__ = ("context", "_ssl", "_in", "_out")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 context: ssl.SSLContext) -> None:
        super().__init__(reader, writer)
        self.context = context
        self._ssl: ssl.SSLObject | None = None
        self._in: ssl.MemoryBIO | None = None
        self._out: ssl.MemoryBIO | None = None

    async def _raw(self) -> bytes:
        return await self.reader.read(READ_SIZE)

    def _flush(self) -> None:
        assert self._out is not None
        if self._out.pending:
            self.writer.write(self._out.read())

    async def _handshake(self) -> bool:
        """False if the peer closed before sending anything, or is not speaking TLS
        (it gets a plain-text 400 and the connection ends)."""
        first = await self._raw()
        if not first:
            return False
        if first[0] != _TLS_HANDSHAKE:
            self.writer.write(PLAIN_HTTP_TO_TLS)
            return False
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = self.context.wrap_bio(self._in, self._out, server_side=True)
        self._in.write(first)
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = await self._raw()
                if not data:
                    raise ConnectionResetError("closed during the TLS handshake") from None
                self._in.write(data)
        self._flush()
        return True

    async def recv(self) -> bytes:
        if self._ssl is None and not await self._handshake():
            return b""
        assert self._ssl is not None and self._in is not None
        while True:
            try:
                data = self._ssl.read(READ_SIZE)
                self._flush()  # TLS 1.3 may answer records of its own (key updates)
                return data
            except ssl.SSLWantReadError:
                self._flush()
                raw = await self._raw()
                if not raw:
                    return b""
                self._in.write(raw)
            except ssl.SSLZeroReturnError:
                return b""

    def close(self) -> None:
        """Say close_notify first (a client can tell a finished answer from a cut one)."""
        if self._ssl is not None and not self.writer.transport.is_closing():
            try:
                self._ssl.unwrap()
            except ssl.SSLError:  # SSLWantReadError: the peer's close_notify is not awaited
                pass
            self._flush()
        super().close()

    def send(self, data: bytes) -> None:
        assert self._ssl is not None
        view = memoryview(data)
        while view:
            view = view[self._ssl.write(view):]
            self._flush()
