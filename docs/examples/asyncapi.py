"""The AsyncAPI document of an App: printed, and served beside the App's sockets.

Run from the repository root: ``python docs/examples/asyncapi.py``. It prints part of the
document of a small contract, serves a Starlette app (the sockets under ``/rt``, the
document under ``/docs``) with uvicorn on a free port of 127.0.0.1, calls the socket,
fetches the JSON and the page with httpx, reads the document from a FastAPI app too, and
stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncGenerator
from typing import Annotated, Any, Protocol

import httpx
import msgspec
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

import grestws
from grestws.asyncapi import asyncapi_app, asyncapi_document

# -- A small contract --------------------------------------------------------------------


class AddRequest(msgspec.Struct, rename="camel"):
    amount: Annotated[int, msgspec.Meta(ge=1)]
    note_text: str | None = None


class Limit(msgspec.Struct, rename="camel"):
    max_total: int


class TooBig(grestws.ApiError[Limit], type="TOO_BIG", status_code=400):
    """The total would pass the limit."""


class CounterServer(Protocol):
    @grestws.request(errors=[TooBig], permission=grestws.Scope("counter:write"))
    async def add(self, req: AddRequest) -> int:
        """Add to the counter; the new total."""
        ...

    @grestws.notify(permission=grestws.PUBLIC)
    async def hello(self) -> None:
        """Say hello; nothing answers."""
        ...


class CounterClient(Protocol):
    @grestws.notify
    async def changed(self, total: int) -> None:
        """The counter changed."""
        ...


Counter = grestws.SocketContract(
    "Counter", client_to_server=CounterServer, server_to_client=CounterClient, rename="camel"
)


async def verify(token: str) -> grestws.Identity | None:
    """The demo's token check: ``secret-<name>`` may write."""
    name = token.removeprefix("secret-")
    if not token.startswith("secret-") or not name:
        return None
    return grestws.Identity(name, frozenset({"counter:write"}))


CounterApi = Counter.at("/ws/counter").use(grestws.BearerAuth(verify=verify))
LIMIT = 100


class CounterHandler(CounterServer):
    total = 0

    def __init__(self, conn: grestws.ServerConnection[CounterClient]) -> None:
        self.conn = conn

    async def add(self, req: AddRequest) -> int:
        if CounterHandler.total + req.amount > LIMIT:
            raise TooBig("Over the limit", data=Limit(max_total=LIMIT))
        CounterHandler.total += req.amount
        await self.conn.outgoing.changed(CounterHandler.total)
        return CounterHandler.total

    async def hello(self) -> None:
        pass


sockets = grestws.App(shutdown_timeout=5.0)
sockets.add(CounterApi, CounterHandler)

# -- The document ------------------------------------------------------------------------

document = asyncapi_document(sockets, title="Counter", servers={"local": "ws://127.0.0.1:8000/rt"})

# -- Serving it beside the sockets -------------------------------------------------------

docs = asyncapi_app(sockets, title="Counter", servers={"local": "ws://127.0.0.1:8000/rt"})

app = Starlette(
    routes=[
        Mount("/rt", app=sockets),  # the socket is at /rt/ws/counter
        Mount("/docs", app=docs),  # GET /docs/asyncapi.json and the page at /docs/asyncapi
    ],
    lifespan=sockets.lifespan,
)

api = FastAPI(lifespan=sockets.lifespan)
api.mount("/rt", sockets)
api.mount("/docs", asyncapi_app(sockets, title="Counter"))

# -- Running it ------------------------------------------------------------------------


class Printer(CounterClient):
    async def changed(self, total: int) -> None:
        print("pushed to the client: total", total)


@contextlib.asynccontextmanager
async def served(asgi_app: Starlette) -> AsyncGenerator[int]:
    """Serve ``asgi_app`` with uvicorn on a free port of 127.0.0.1; yield the port."""
    sock = socket.create_server(("127.0.0.1", 0))  # listening: clients wait until uvicorn serves
    server = uvicorn.Server(uvicorn.Config(asgi_app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await serving


def show(operation: dict[str, Any]) -> None:
    """An operation of the document, its references left out."""
    shown = {key: value for key, value in operation.items() if key not in ("channel", "messages", "reply")}
    print(json.dumps(shown, indent=2, sort_keys=True))


async def main() -> None:
    print("channels:", {name: channel["address"] for name, channel in document["channels"].items()})
    print("operations:", {name: operation["action"] for name, operation in document["operations"].items()})
    add = document["operations"]["Counter.clientToServer.add"]
    show(add)
    assert add["action"] == "receive"  # the server receives what clients call
    assert add["x-grestws-permission"] == "counter:write"
    assert document["operations"]["Counter.serverToClient.changed"]["action"] == "send"
    assert document["components"]["schemas"]["AddRequest"]["properties"]["noteText"]["default"] is None

    async with served(app) as port:
        schema = Counter.at("/ws/counter").use(grestws.BearerAuth("secret-ann"))
        async with grestws.connect(f"ws://127.0.0.1:{port}/rt", schema, handlers=Printer()) as client:
            print("add(5):", await client.outgoing.add(AddRequest(amount=5)))

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            spec = await http.get("/docs/asyncapi.json")
            print("GET /docs/asyncapi.json:", spec.status_code, spec.headers["content-type"])
            assert spec.json() == document
            page = await http.get("/docs/asyncapi")
            print("GET /docs/asyncapi:", page.status_code, page.headers["content-type"])
            assert "<asyncapi-component" in page.text
            assert "Counter.clientToServer.add" in page.text  # the JSON is in the page too

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://fastapi") as http:
        spec = await http.get("/docs/asyncapi.json")
        print("FastAPI, GET /docs/asyncapi.json:", spec.status_code, spec.json()["info"]["title"])
        assert spec.status_code == 200


if __name__ == "__main__":
    asyncio.run(main())
