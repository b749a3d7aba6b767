"""One BearerAuth for HTTP and WebSockets: the chat example's socket and an HTTP route beside
it on one port, both checked with the chat server's ``verify``, and a client whose token
comes from its session, for its HTTP requests and its socket alike.

Run from the repository root: ``python docs/examples/auth.py`` (uvicorn and Starlette:
``pip install 'grestws[asgi]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

import grestws
from examples.chat import server
from examples.chat.client import Printer
from examples.chat.contract import ChatApi, SendMessageRequest
from examples.chat.server import auth


async def whoami(request: Request) -> Response:
    """An HTTP route that checks the bearer token itself, with the socket's check."""
    try:
        identity = await auth.authenticate(request.headers)  # raises NotAuthorizedError
    except grestws.NotAuthorizedError as exc:
        return PlainTextResponse(exc.message or "", status_code=401)
    return PlainTextResponse(identity.id)


app = Starlette(
    routes=[Route("/whoami", whoami), WebSocketRoute(ChatApi.path, server.app)],
    lifespan=server.app.lifespan,
)


@dataclass
class Session:
    """What a client keeps once its user has logged in; a refresh replaces the token."""

    access_token: str


@contextlib.asynccontextmanager
async def served(asgi_app: Starlette) -> AsyncGenerator[int]:
    """Serve ``asgi_app`` with uvicorn on a free port of 127.0.0.1; yield the port."""
    sock = socket.create_server(("127.0.0.1", 0))  # listening: clients wait until uvicorn serves
    uvicorn_server = uvicorn.Server(uvicorn.Config(asgi_app, log_level="warning"))
    serving = asyncio.create_task(uvicorn_server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        uvicorn_server.should_exit = True  # what SIGTERM does
        await serving


async def main() -> None:
    async with served(app) as port:
        whoami_url = f"http://127.0.0.1:{port}/whoami"
        session = Session(access_token="secret-alice")

        auth = grestws.BearerAuth(lambda: session.access_token)
        http = httpx.AsyncClient(auth=auth)  # Authorization: Bearer … on every request
        schema = ChatApi.use(auth)  # the same header in the socket's h frame

        async with http, grestws.connect(f"ws://127.0.0.1:{port}", schema, handlers=Printer()) as client:
            print("GET /whoami:", (await http.get(whoami_url)).text)
            await client.outgoing.send_message(SendMessageRequest(text="hello", channel_id="general"))

            # The function is called for every request: a refreshed token is used at once.
            session.access_token = "secret-admin"
            answer = await http.get(whoami_url)
            print("after a refresh, GET /whoami:", answer.text)
            assert answer.text == "admin"

            # The socket's identity was settled at its handshake, and stays.
            reply = await client.outgoing.send_message(SendMessageRequest(text="again", channel_id="general"))
            assert server.sent[reply.message_id].sender_id == "alice"

            session.access_token = "forged"
            refused = await http.get(whoami_url)
            print("with a forged token:", refused.status_code, refused.text)
            assert (refused.status_code, refused.text) == (401, "Invalid token")


if __name__ == "__main__":
    asyncio.run(main())
