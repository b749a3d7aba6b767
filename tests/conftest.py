"""Fixtures shared by the test suite: real servers on 127.0.0.1 with ephemeral ports, and a
guard that fails any test in which an ERROR is logged that the test did not expect."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Protocol

import pytest

import grestws
from grestws.incidents import PEER_LOG


class StartServer(Protocol):
    def __call__(self, app: grestws.App, **options: Any) -> Awaitable[grestws.Server]: ...


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``server = await start_server(app)`` serves ``app`` on 127.0.0.1 at a free port;
    every server started is shut down when the test ends."""
    servers: list[grestws.Server] = []

    async def start(app: grestws.App, **options: Any) -> grestws.Server:
        server = await grestws.serve(app, "127.0.0.1", 0, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(timeout=1.0)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_WATCHED = ("grestws", "asyncio", "websockets")


@pytest.fixture(autouse=True)
def no_error_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if grestws, asyncio or websockets logged an ERROR during it (a task
    exception never retrieved, a traceback caused by a peer, ...), unless the test is
    marked ``@pytest.mark.logs_errors`` because it makes a handler fail on purpose."""
    PEER_LOG.reset()  # each test gets the log lines of a fresh process
    handler = _Errors()
    loggers = [logging.getLogger(name) for name in _WATCHED]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
        gc.collect()  # "Task exception was never retrieved" is logged when the task is collected
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    if handler.records and request.node.get_closest_marker("logs_errors") is None:
        lines = "\n".join(f"{r.name} {r.levelname}: {r.getMessage()}" for r in handler.records[:10])
        pytest.fail(f"ERROR logged during the test:\n{lines}", pytrace=False)
