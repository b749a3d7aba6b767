"""The chat behind one port and one bearer check: ``uvicorn examples.chat.asgi:app``.

- ``GET /health``: ``ok``, without a token;
- ``GET /api/messages``: the latest messages as JSON (camelCase, as on the socket), for
  the same bearer tokens as the socket (``Authorization: Bearer secret-alice``);
- ``/ws/chat``: the chat socket, the App of :mod:`examples.chat.server` unchanged, so
  ``python -m examples.chat.client ws://127.0.0.1:8000`` talks to it;
- ``/chat/``: the chat's web page (``examples/chat/web``), without a token: the page
  asks for one and sends it in the socket's handshake.

Starlette rather than FastAPI because two routes need nothing more, and Starlette is what
``pip install 'grestws[asgi]'`` installs with uvicorn; ``docs/examples/asgi_fastapi.py``
serves an App from FastAPI, with ``Depends(auth.require())``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

import grestws
from examples.chat import server
from examples.chat.contract import ChatApi
from grestws.asgi_auth import BearerAuthMiddleware

logger = logging.getLogger("examples.chat")

WEB = Path(__file__).with_name("web")
"""The web page and its compiled scripts."""


async def health(request: Request) -> Response:
    """Whether the process serves requests; needs no token."""
    return PlainTextResponse("ok")


async def messages(request: Request) -> Response:
    """The latest messages, oldest first; needs a token (the middleware checked it)."""
    identity: grestws.Identity = request.state.identity
    logger.info("%s read the latest messages", identity.id)
    return Response(msgspec.json.encode(server.latest_messages()), media_type="application/json")


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/api/messages", messages),
        WebSocketRoute(ChatApi.path, server.app),
        Mount("/chat", StaticFiles(directory=WEB, html=True), name="web"),
    ],
    # One auth object for both: the socket's schema uses server.auth in its handshake.
    middleware=[Middleware(BearerAuthMiddleware, auth=server.auth, public={"/health", "/chat", "/chat/"})],
    # Starlette's lifespan does not reach the apps it routes to: the chat App's own refuses
    # to start an App that cannot be served and drains its connections on shutdown.
    lifespan=server.app.lifespan,
)
