"""An App mounted in FastAPI, with HTTP routes guarded by the socket's BearerAuth.

Run from the repository root: ``python docs/examples/asgi_fastapi.py``. It serves the
FastAPI app with uvicorn on a free port of 127.0.0.1 (``uvicorn asgi_fastapi:api`` from
``docs/examples/`` serves it the same way), posts over the socket, and calls the HTTP
routes with a user's token and an admin's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncGenerator
from typing import Annotated, Protocol

import httpx
import uvicorn
from fastapi import Depends, FastAPI

import grestws

# -- The socket contract and its App ----------------------------------------------------


class BoardServer(Protocol):
    @grestws.request(permission=grestws.PUBLIC)
    async def post(self, text: str) -> int: ...


class BoardClient(Protocol):
    pass


Board = grestws.SocketContract("Board", client_to_server=BoardServer, server_to_client=BoardClient)


async def verify(token: str) -> grestws.Identity | None:
    """The demo's token check: ``secret-<name>`` is user ``<name>``; ``admin`` moderates."""
    name = token.removeprefix("secret-")
    if not token.startswith("secret-") or not name:
        return None
    return grestws.Identity(name, frozenset({"board:admin"}) if name == "admin" else frozenset())


auth = grestws.BearerAuth(verify=verify)
BoardApi = Board.at("/ws/board").use(auth)

posts: list[str] = []


class BoardHandler(BoardServer):
    def __init__(self, conn: grestws.ServerConnection[BoardClient]) -> None:
        pass

    async def post(self, text: str) -> int:
        posts.append(text)
        return len(posts)


sockets = grestws.App(shutdown_timeout=5.0)
sockets.add(BoardApi, BoardHandler)

# -- The FastAPI app --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncGenerator[None]:
    async with sockets.lifespan(api):  # check on startup, graceful drain on shutdown
        yield  # the app's own startup and shutdown go around this


api = FastAPI(lifespan=lifespan)


@api.get("/api/posts")
async def list_posts(identity: Annotated[grestws.Identity, Depends(auth.require())]) -> list[str]:
    return posts


@api.delete("/api/posts")
async def clear_posts(identity: Annotated[grestws.Identity, Depends(auth.require("board:admin"))]) -> int:
    cleared = len(posts)
    posts.clear()
    return cleared


api.mount("/rt", sockets)  # the socket is at /rt/ws/board

# -- Running it ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncGenerator[int]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1; yield the port."""
    sock = socket.create_server(("127.0.0.1", 0))  # listening: clients wait until uvicorn serves
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await serving


async def main() -> None:
    async with served(api) as port:
        ann = grestws.BearerAuth("secret-ann")
        async with grestws.connect(f"ws://127.0.0.1:{port}/rt", Board.at("/ws/board").use(ann)) as client:
            await client.outgoing.post("hello")

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            listed = await http.get("/api/posts", auth=ann)
            print("GET /api/posts as ann:", listed.status_code, listed.json())
            forged = await http.get("/api/posts", auth=grestws.BearerAuth("forged"))
            print("GET /api/posts, forged token:", forged.status_code, forged.json())
            denied = await http.delete("/api/posts", auth=ann)
            print("DELETE /api/posts as ann:", denied.status_code, denied.json())
            cleared = await http.delete("/api/posts", auth=grestws.BearerAuth("secret-admin"))
            print("DELETE /api/posts as admin:", cleared.status_code, cleared.json())
    assert (listed.status_code, listed.json()) == (200, ["hello"])
    assert (forged.status_code, forged.headers["www-authenticate"]) == (401, "Bearer")
    assert (denied.status_code, cleared.status_code, cleared.json()) == (403, 200, 1)


if __name__ == "__main__":
    asyncio.run(main())
