"""An App mounted in Starlette beside HTTP routes, on one port, behind one BearerAuth.

Run from the repository root: ``python docs/examples/asgi_starlette.py``. It serves the
Starlette app with uvicorn on a free port of 127.0.0.1 (``uvicorn asgi_starlette:app``
from ``docs/examples/`` serves it the same way), reads ``/api/posts`` over HTTP and posts
over the socket with the same token, and stops the server with a socket still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncGenerator
from typing import Protocol

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

import grestws
from grestws.asgi_auth import BearerAuthMiddleware

# -- The socket contract and its App ----------------------------------------------------


class BoardServer(Protocol):
    @grestws.request(permission=grestws.PUBLIC)
    async def post(self, text: str) -> int: ...


class BoardClient(Protocol):
    @grestws.notify
    async def posted(self, text: str) -> None: ...


Board = grestws.SocketContract("Board", client_to_server=BoardServer, server_to_client=BoardClient)


async def verify(token: str) -> grestws.Identity | None:
    """The demo's token check: ``secret-<name>`` is user ``<name>``."""
    name = token.removeprefix("secret-")
    return grestws.Identity(name) if token.startswith("secret-") and name else None


auth = grestws.BearerAuth(verify=verify)
BoardApi = Board.at("/ws/board").use(auth)

posts: list[str] = []


class BoardHandler(BoardServer):
    def __init__(self, conn: grestws.ServerConnection[BoardClient]) -> None:
        self.conn = conn

    async def post(self, text: str) -> int:
        posts.append(text)
        await self.conn.outgoing.posted(text)
        return len(posts)


sockets = grestws.App(shutdown_timeout=5.0)
sockets.add(BoardApi, BoardHandler)

# -- The Starlette app: HTTP routes and the sockets -------------------------------------


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def list_posts(request: Request) -> Response:
    identity: grestws.Identity = request.state.identity  # set by BearerAuthMiddleware
    return JSONResponse({"reader": identity.id, "posts": posts})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/api/posts", list_posts),
        Mount("/rt", app=sockets),  # the socket is at /rt/ws/board
    ],
    middleware=[Middleware(BearerAuthMiddleware, auth=auth, public={"/health"})],
    lifespan=sockets.lifespan,  # check on startup, graceful drain on shutdown
)

# -- Running it ------------------------------------------------------------------------


class Printer(BoardClient):
    async def posted(self, text: str) -> None:
        print("pushed to the client:", text)


@contextlib.asynccontextmanager
async def served(asgi_app: Starlette) -> AsyncGenerator[int]:
    """Serve ``asgi_app`` with uvicorn on a free port of 127.0.0.1; yield the port."""
    sock = socket.create_server(("127.0.0.1", 0))  # listening: clients wait until uvicorn serves
    server = uvicorn.Server(uvicorn.Config(asgi_app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True  # what SIGTERM does
        await serving


async def main() -> None:
    async with served(app) as port:
        token = grestws.BearerAuth("secret-ann")  # one token for HTTP and the socket
        schema = Board.at("/ws/board").use(token)
        async with grestws.connect(f"ws://127.0.0.1:{port}/rt", schema, handlers=Printer()) as client:
            print("posts after posting:", await client.outgoing.post("hello"))

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", auth=token) as http:
            listed = await http.get("/api/posts")
            print("GET /api/posts:", listed.status_code, listed.json())
            assert listed.json() == {"reader": "ann", "posts": ["hello"]}
            refused = await http.get("/api/posts", auth=grestws.BearerAuth("forged"))
            print("with a forged token:", refused.status_code, refused.headers["www-authenticate"])
            assert refused.status_code == 401
            assert (await http.get("/health", auth=None)).text == "ok"

        # uvicorn closes open sockets with 1012 on shutdown, before the lifespan shutdown.
        client = await grestws.connect(f"ws://127.0.0.1:{port}/rt", schema, handlers=Printer())
        closed: list[int | None] = []
        client.on_close(lambda code, reason: closed.append(code))
    await client.close()
    print("a socket open at shutdown was closed with", closed[0])
    assert closed == [1012]


if __name__ == "__main__":
    asyncio.run(main())
