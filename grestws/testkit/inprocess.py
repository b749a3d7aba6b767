"""Connect a client to an :class:`~grestws.App` in the same process, with no socket.

:class:`AppDialer` is a :class:`~grestws.transports.Dialer`: it answers the upgrade as a
server would (404 for a path no schema is served at, 403 for an origin the App refuses,
503 over its connection cap), then runs the App's side of the connection over a
:func:`~grestws.transports.memory.memory_pair`, as a task of the running loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from grestws.app import App
from grestws.context import ConnectRequest, Headers
from grestws.exceptions import ConnectError
from grestws.transports import Dialed
from grestws.transports.memory import MemoryTransport, memory_pair

__all__ = ("AppDialer",)


class AppDialer:
    """Dials ``app`` in-process: ``Client(url, schema, dialer=AppDialer(app))``.

    The URL's host is the upgrade's ``Host`` header (unless ``headers`` has one); its path
    picks the schema and its query is the connection's query, as on a socket. Each
    connection's server side runs in a task until the client leaves and the App is done
    with it; :meth:`wait_closed` waits for those tasks.

    Concurrency: any number of clients may dial one AppDialer at once.
    """

    __slots__ = ("_tasks", "app")

    def __init__(self, app: App) -> None:
        self.app = app
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        """Open a connection to the App.

        Raises:
            ConnectError: the App refuses the upgrade (``HTTP 404`` and the like).
        """
        parts = urlsplit(url)
        given = Headers(headers.items())
        host = [] if "host" in given else [("host", parts.netloc)]  # as a browser or websockets sends
        request = ConnectRequest(
            path=parts.path or "/",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=Headers([*host, *headers.items()]),
        )
        refusal = self.app.refusal(request.path, request.headers)
        if refusal is not None:
            raise ConnectError(f"{url}: HTTP {refusal.status.value} {refusal.reason}")
        client_end, server_end = memory_pair()
        task = asyncio.create_task(self._serve(server_end, request), name=f"grestws-inprocess {request.path}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Dialed(client_end, None)

    async def _serve(self, transport: MemoryTransport, request: ConnectRequest) -> None:
        try:
            await self.app.handle(transport, request, owner=self)
        finally:
            await transport.close(1000, "")

    async def wait_closed(self) -> None:
        """Wait until the App is done with every connection this dialer opened, the
        calls they started included; a failure of the App's side is raised here.

        Cancel-safe: cancelling stops the wait, not the connections.
        """
        while self._tasks:
            tasks = list(self._tasks)
            await asyncio.shield(asyncio.wait(tasks))
            for task in tasks:
                self._tasks.discard(task)
                if not task.cancelled() and (error := task.exception()) is not None:
                    raise error
