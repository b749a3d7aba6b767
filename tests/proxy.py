"""A TCP proxy on 127.0.0.1 that can fail the network between two peers the ways real
networks fail.

:class:`TcpProxy` forwards every connection it accepts to a target port. The tests
switch it between three modes:

- forwarding (:meth:`TcpProxy.heal`);
- cut (:meth:`TcpProxy.cut`): every link is reset and new ones are refused, while both
  peers go on (a network partition; both peers learn of it at once);
- black hole (:meth:`TcpProxy.black_hole`): every link stays open but the bytes sent
  either way are discarded, closes included, and new links are accepted and black-holed
  too. Neither peer is told anything: a dead NAT entry or mobile link, a half-open
  connection that only a peer's own liveness watch can notice.
"""

from __future__ import annotations

import asyncio
import enum
from types import TracebackType
from typing import Any, Self

__all__ = ("Mode", "TcpProxy")


class Mode(enum.Enum):
    """What the proxy does with the bytes and links it gets."""

    FORWARD = "forward"
    CUT = "cut"
    BLACK_HOLE = "black hole"


class _Link:
    """One connection through the proxy: its two sockets, and whether it is black-holed."""

    __slots__ = ("aborted", "holed", "writers")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writers = [writer]
        self.holed = False
        self.aborted = False

    def add(self, writer: asyncio.StreamWriter) -> None:
        """The socket to the target (aborted at once if the link was meanwhile)."""
        self.writers.append(writer)
        if self.aborted:
            writer.transport.abort()

    def abort(self) -> None:
        """Reset both sockets."""
        self.aborted = True
        for writer in self.writers:
            writer.transport.abort()


class TcpProxy:
    """A proxy on 127.0.0.1 at a free port (:attr:`port`, once started) to ``target_port``.

    Usable as ``async with TcpProxy(port) as proxy:``, which starts it and closes it.

    Attributes:
        mode: What the proxy does now (see the module docstring).
        accepted: Links accepted (not refused) so far, whatever happened to them.
        forwarded: Links connected through to the target so far.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = Mode.FORWARD
        self.accepted = 0
        self.forwarded = 0
        self.port = 0
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Reset every link, and refuse new ones until :meth:`heal`."""
        self.mode = Mode.CUT
        for link in list(self._links):
            link.abort()

    def black_hole(self) -> None:
        """Discard every byte and close, both ways, on every link, and accept new links
        only to do the same, until :meth:`heal`."""
        self.mode = Mode.BLACK_HOLE
        for link in self._links:
            link.holed = True

    def heal(self) -> None:
        """Forward new links again. Black-holed links are reset, as a NAT that lost a
        connection's mapping answers its next packet: what was discarded broke them."""
        self.mode = Mode.FORWARD
        for link in [link for link in self._links if link.holed]:
            link.abort()

    async def close(self) -> None:
        """Reset every link, stop listening, and wait until every link is done."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode is Mode.CUT:
            writer.transport.abort()
            return
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        try:
            if self.mode is Mode.BLACK_HOLE:
                link.holed = True
                await self._pump(link, reader, None)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                return
            link.add(up_writer)
            self.forwarded += 1
            await asyncio.gather(self._pump(link, reader, up_writer), self._pump(link, up_reader, writer))
        finally:
            self._links.discard(link)
            link.abort()

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None
    ) -> None:
        """Copy ``reader`` to ``writer`` until either side ends, then reset the link, unless
        it is black-holed: then discard what is read, and tell the other side nothing."""
        try:
            while data := await reader.read(65536):
                if link.holed or writer is None or writer.is_closing():
                    continue
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            if not link.holed:
                link.abort()
