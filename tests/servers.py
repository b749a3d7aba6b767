"""The servers the integration tests run an App on: :func:`grestws.serve` (over websockets,
or with ``transport="picows"``) and :class:`UvicornServer`, a real ``uvicorn.Server`` in the
test's own event loop.

All give the tests the same interface (:class:`ServedApp`): the URL to connect to, the
App, its open connections, a graceful ``close`` and ``close_identity``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any, Protocol

import uvicorn

import grestws

__all__ = ("ServedApp", "UvicornServer")

START_TIMEOUT = 5.0
"""Seconds uvicorn may take to start (its lifespan startup included)."""
STOP_TIMEOUT = 5
"""Seconds uvicorn waits, once the App has drained, for its connections and tasks to end
before it cancels them (and logs an ERROR, which fails the test)."""


class ServedApp(Protocol):
    """What the tests use of a running server: :class:`grestws.Server` has it all."""

    @property
    def app(self) -> grestws.App: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def connections(self) -> set[grestws.ServerConnection[Any]]: ...
    @property
    def closing(self) -> bool: ...
    def urls(self) -> list[str]: ...
    async def close(self, timeout: float | None = None) -> None: ...
    async def close_identity(self, identity_id: str, reason: str = "Access revoked") -> int: ...


class _Uvicorn(uvicorn.Server):
    """``uvicorn.Server`` that says when it has started and leaves the test process's
    signal handlers alone (Ctrl+C stops pytest, not one test's server)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class UvicornServer:
    """An App served by uvicorn (``websockets-sansio``, lifespan on) on 127.0.0.1 at a
    free port. Made by :meth:`start`.

    ``close`` shuts down as an application would from its own shutdown hook: the App
    drains first (calls in flight finish, every connection closes with 1000), then uvicorn
    exits; uvicorn alone would close the sockets with 1012 before the lifespan shutdown.
    """

    def __init__(self, app: grestws.App, server: _Uvicorn, task: asyncio.Task[None], address: Any) -> None:
        self.app = app
        self._server = server
        self._task = task
        self._address: tuple[str, int] = address[:2]
        self._closing: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, app: grestws.App, asgi: Any = None, **options: Any) -> UvicornServer:
        """Serve ``app``, or the ASGI application ``asgi`` that mounts it (Starlette, say);
        ``options`` go to ``uvicorn.Config`` (``ws_ping_interval``, ``root_path``, ...);
        compression is off unless ``ws_per_message_deflate`` says otherwise, as with
        grestws.serve.

        Raises:
            RuntimeError: uvicorn did not start (its lifespan startup failed, say).
        """
        config = uvicorn.Config(
            app if asgi is None else asgi,
            http="h11",
            ws="websockets-sansio",
            lifespan="on",
            log_config=None,
            log_level="warning",
            timeout_graceful_shutdown=STOP_TIMEOUT,
            **{"ws_per_message_deflate": False, **options},
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            address = sock.getsockname()
            server = _Uvicorn(config)
            task = asyncio.get_running_loop().create_task(_serve(server, sock))
        except BaseException:
            sock.close()
            raise
        ready = asyncio.ensure_future(server.ready.wait())
        try:
            await asyncio.wait({ready, task}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if task.done():
            task.result()  # raises why it stopped
            raise RuntimeError("uvicorn stopped before it started")
        if not server.ready.is_set():
            server.should_exit = True
            await asyncio.wait_for(task, START_TIMEOUT)
            raise RuntimeError(f"uvicorn did not start within {START_TIMEOUT} s")
        return cls(app, server, task, address)

    @property
    def host(self) -> str:
        return str(self._address[0])

    @property
    def port(self) -> int:
        return int(self._address[1])

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def urls(self) -> list[str]:
        return [self.url + path for path in self.app.routes]

    @property
    def connections(self) -> set[grestws.ServerConnection[Any]]:
        """The App's open connections (this is the App's only server)."""
        return self.app.connections.open()

    @property
    def closing(self) -> bool:
        return self._closing is not None

    async def close(self, timeout: float | None = None) -> None:
        """Stop listening, drain the App (``timeout``: its grace period), stop uvicorn.
        Idempotent; concurrent calls wait for the same shutdown."""
        if self._closing is None:
            for listener in self._server.servers:  # stop accepting at once, as grestws.Server does
                listener.close()
            self._closing = asyncio.ensure_future(self._shutdown(timeout))
        await asyncio.shield(self._closing)

    async def _shutdown(self, timeout: float | None) -> None:
        try:
            await self.app.shutdown(timeout)
        finally:
            self._server.should_exit = True
            await self._task

    async def close_identity(self, identity_id: str, reason: str = "Access revoked") -> int:
        return await self.app.connections.close_identity(identity_id, reason)


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits when the lifespan startup fails
        raise RuntimeError(f"uvicorn exited with {exc.code}") from exc
    finally:
        sock.close()
