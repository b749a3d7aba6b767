"""An App is the application of every ASGI server and framework, as their types see it."""

from __future__ import annotations

import hypercorn.asyncio
import hypercorn.config
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute

import grestws

app = grestws.App()

uvicorn_config = uvicorn.Config(app)
starlette_app = Starlette(
    routes=[Mount("/rt", app=app), WebSocketRoute("/ws/chat", app)], lifespan=app.lifespan
)
fastapi_app = FastAPI(lifespan=app.lifespan)
fastapi_app.mount("/", app)


async def serve_with_hypercorn() -> None:
    # hypercorn's own signature has a WSGI branch typed with dict[Unknown, Unknown].
    await hypercorn.asyncio.serve(app, hypercorn.config.Config())  # pyright: ignore[reportUnknownMemberType]
