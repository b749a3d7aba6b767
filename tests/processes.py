"""Servers for the tests that run beside them: ``python -m uvicorn TARGET`` and
``grestws serve TARGET`` in subprocesses, any ASGI app under uvicorn in the test's event
loop, and static files from a thread.

uvicorn listens on a socket the test bound to 127.0.0.1 port 0 first, so the port is
known before the server starts and a first request waits in the backlog until it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import re
import signal
import socket
import sys
import threading
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

__all__ = (
    "STOP_WAIT",
    "UvicornProcess",
    "grestws_serve",
    "listening_socket",
    "static_files",
    "uvicorn_in_process",
    "uvicorn_process",
)

ROOT = Path(__file__).resolve().parent.parent
STOP_WAIT = 15.0
"""Seconds a server gets to stop after it was asked to."""


def listening_socket() -> socket.socket:
    """A TCP socket listening on 127.0.0.1 at a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


async def wait_until_healthy(http: httpx.AsyncClient, url: str, process: asyncio.subprocess.Process) -> None:
    """Poll ``url`` until it answers 200: a bounded number of tries, each bounded in time."""
    for _ in range(20):
        if process.returncode is not None:
            break
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(url, timeout=1.0)).status_code == 200:
                return
    pytest.fail(f"{url} never answered 200 (server exit code {process.returncode})")


class UvicornProcess:
    """``python -m uvicorn TARGET`` in a subprocess, on an inherited listening socket."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.http_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.log = ""

    async def stop(self) -> str:
        """SIGTERM, a bounded wait, then SIGKILL; the server's log. Idempotent."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = await asyncio.wait_for(self.process.communicate(), STOP_WAIT)
        except TimeoutError:
            self.process.kill()
            _, err = await self.process.communicate()
        self.log += err.decode(errors="replace")
        return self.log


@contextlib.asynccontextmanager
async def uvicorn_process(target: str, *options: str) -> AsyncGenerator[UvicornProcess]:
    sock = listening_socket()
    with sock:
        fd = sock.fileno()
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "uvicorn", target, "--fd", str(fd), "--no-access-log", *options),
            cwd=ROOT,
            pass_fds=(fd,),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        served = UvicornProcess(process, sock.getsockname()[1])
    try:
        async with httpx.AsyncClient() as http:
            await wait_until_healthy(http, served.http_url + "/health", process)
        yield served
    finally:
        await served.stop()


@contextlib.asynccontextmanager
async def uvicorn_in_process(app: Any) -> AsyncGenerator[int]:
    """Serve ``app`` with uvicorn in this event loop; yield the port."""
    sock = listening_socket()
    config = uvicorn.Config(app, lifespan="on", log_level="warning", ws="wsproto")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, STOP_WAIT)
        sock.close()


LISTENING = re.compile(r"listening on (ws://127\.0\.0\.1:\d+)/")


@contextlib.asynccontextmanager
async def grestws_serve(target: str, *options: str) -> AsyncGenerator[str]:
    """``grestws serve TARGET --port 0 OPTIONS`` in a subprocess: yields its base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "grestws", "serve", target, "--port", "0", *options),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(15):
            while line := (await process.stderr.readline()).decode():
                lines.append(line)
                if match := LISTENING.search(line):
                    break
            else:
                raise AssertionError("the server did not start:\n" + "".join(lines))
        yield match.group(1)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.stderr.read(), STOP_WAIT)
        await asyncio.wait_for(process.wait(), STOP_WAIT)


@contextlib.contextmanager
def static_files(folder: Path) -> Iterator[str]:
    """A ``http.server`` in a thread serving ``folder`` on 127.0.0.1: yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-files", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STOP_WAIT)
