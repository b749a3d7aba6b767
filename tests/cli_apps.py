"""Apps that tests/test_cli.py has ``grestws serve`` run in a subprocess."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import grestws

logger = logging.getLogger("tests.cli_apps")


class HangServer(Protocol):
    @grestws.request
    async def hang(self) -> None:
        """Never answers: runs until it is cancelled."""
        ...


class HangClient(Protocol):
    pass


HangApi = grestws.SocketContract("HangApi", client_to_server=HangServer, server_to_client=HangClient).at(
    "/ws/hang"
)


class HangHandler(HangServer):
    def __init__(self, conn: grestws.ServerConnection[HangClient]) -> None:
        self.conn = conn

    async def hang(self) -> None:
        logger.info("hang started")
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            logger.info("hang cancelled")
            raise


hang_app = grestws.App(shutdown_timeout=60.0)
"""A call to ``hang`` outlives any test unless the shutdown is forced."""
hang_app.add(HangApi, HangHandler)
