"""Typed application errors, SERVER_ERROR refs, and as_result with match.

Run from the repository root: ``python docs/examples/errors.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import msgspec

import grestws

# -- Application errors ------------------------------------------------------------------


class RoomInfo(msgspec.Struct, rename="camel"):
    seats: int
    waiting_list: int


class RoomFull(grestws.ApiError[RoomInfo], type="ROOM_FULL", status_code=400):
    """The room has no free seat; ``data`` says how full it is."""


class RoomClosed(grestws.ApiError, type="ROOM_CLOSED", status_code=409):
    """The room is closed (no data)."""


Banned = grestws.ApiError.define("BANNED", 403)


# -- The contract ------------------------------------------------------------------------


class RoomServer(Protocol):
    @grestws.request(errors=[RoomFull, RoomClosed, Banned])
    async def join(self, room: str) -> int: ...


class RoomClient(Protocol):
    pass


RoomApi = grestws.SocketContract("RoomApi", client_to_server=RoomServer, server_to_client=RoomClient).at(
    "/ws/rooms"
)

# -- The server --------------------------------------------------------------------------


class RoomHandler(RoomServer):
    def __init__(self, conn: grestws.ServerConnection[RoomClient]) -> None:
        pass

    async def join(self, room: str) -> int:
        if room == "full":
            raise RoomFull("Room is full", data=RoomInfo(seats=8, waiting_list=3))
        if room == "closed":
            raise RoomClosed("Closed for the night")
        if room == "banned":
            raise Banned()
        if room == "missing":
            raise grestws.NotFoundError("No such room")  # not declared by join
        if room == "bug":
            raise KeyError(room)  # any other exception
        return 7


app = grestws.App()
app.add(RoomApi, RoomHandler)


class Remember(logging.Handler):
    """Keeps the log records, to find the one a SERVER_ERROR's ref names."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def main() -> None:
    log = Remember()
    logging.getLogger("grestws").addHandler(log)
    logging.getLogger("grestws").propagate = False

    async with (
        grestws.serve(app, "127.0.0.1", 0) as server,
        grestws.connect(server.url, RoomApi) as client,
    ):
        # try/except: the declared class comes back, with its typed data.
        try:
            await client.outgoing.join("full")
        except RoomFull as exc:
            print(f"{exc} -> seats={exc.data.seats}, waiting={exc.data.waiting_list}")

        try:
            await client.outgoing.join("banned")
        except Banned as exc:
            print(f"{exc}")

        # An undeclared error, or any other exception, becomes SERVER_ERROR with a ref.
        for room in ("missing", "bug"):
            try:
                await client.outgoing.join(room)
            except grestws.ServerError as exc:
                logged = [r for r in log.records if exc.ref and exc.ref in r.getMessage()]
                print(f"{exc}; the server logged: {logged[0].getMessage()!r}")

        # match: Ok / Err instead of try/except.
        seen: list[str] = []
        for room in ("lobby", "full", "closed"):
            match await grestws.as_result(client.outgoing.join(room)):
                case grestws.Ok(seat):
                    seen.append(f"seat {seat}")
                case grestws.Err(RoomFull() as error):
                    seen.append(f"full, {error.data.waiting_list} waiting")
                case grestws.Err(error):
                    seen.append(f"{error.type}: {error.message}")
        print(seen)
        assert seen == ["seat 7", "full, 3 waiting", "ROOM_CLOSED: Closed for the night"]


if __name__ == "__main__":
    asyncio.run(main())
