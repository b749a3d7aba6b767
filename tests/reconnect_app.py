"""The App tests/test_reconnect.py has ``grestws serve`` run in a subprocess, so that it can
SIGKILL the server and start it again on the same port.

The environment variable ``RECONNECT_GENERATION`` says which start of the server this is
(1, 2, ...): a call can then tell which process answered it, and a call can be made to
hang in one process and answer in the next. The handlers log what the test waits for
before it kills the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Protocol

import grestws

logger = logging.getLogger("tests.reconnect_app")

GENERATION = int(os.environ.get("RECONNECT_GENERATION", "1"))
"""Which start of the server this process is."""


class KillServer(Protocol):
    @grestws.request
    async def generation(self) -> int:
        """The generation of the process that answers."""
        ...

    @grestws.request
    async def hang(self) -> None:
        """Never answers (not idempotent: the client must not send it again)."""
        ...

    @grestws.request(idempotent=True)
    async def generation_at_least(self, wanted: int) -> int:
        """The generation of the process that answers, once it is at least ``wanted``:
        a process of an earlier generation never answers."""
        ...


class KillClient(Protocol):
    pass


KillApi = grestws.SocketContract("KillApi", client_to_server=KillServer, server_to_client=KillClient).at(
    "/ws/kill"
)


class KillHandler(KillServer):
    def __init__(self, conn: grestws.ServerConnection[KillClient]) -> None:
        self.conn = conn

    async def generation(self) -> int:
        return GENERATION

    async def hang(self) -> None:
        logger.info("hang started")
        await asyncio.get_running_loop().create_future()

    async def generation_at_least(self, wanted: int) -> int:
        if wanted > GENERATION:
            logger.info("generation %d waits for generation %d", GENERATION, wanted)
            await asyncio.get_running_loop().create_future()
        return GENERATION


app = grestws.App(shutdown_timeout=1.0)
app.add(KillApi, KillHandler)
