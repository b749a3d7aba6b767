"""Apps served by ASGI servers beside HTTP routes, with one BearerAuth for both: the chat
example under ``uvicorn`` in a subprocess, an App under hypercorn, an App mounted in
FastAPI, and the HTTP side of BearerAuth (:mod:`grestws.asgi_auth`) on its own.

Servers listen on sockets the tests bind to 127.0.0.1 port 0 first, so the port is known
before the server starts and a first request waits in the backlog until it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import grestws
from examples.chat import server as chat
from examples.chat.contract import ChatApi, ChatClient, ChatServer, SendMessageRequest
from grestws import Identity
from grestws.asgi_auth import BearerAuthMiddleware
from grestws.transports.asgi import Receive, Scope, Send
from tests.processes import STOP_WAIT, listening_socket, uvicorn_in_process, uvicorn_process
from tests.support import WAIT, ChatInbox

ROOT = Path(__file__).resolve().parent.parent
HELLO = SendMessageRequest(text="hi", channel_id="general")


def chat_app() -> grestws.App:
    """A fresh App serving the chat example's schema (with its bearer check) and handler."""
    app = grestws.App(shutdown_timeout=2.0)
    app.add(chat.ServerChatApi, chat.ChatHandler)
    return app


def as_user(token: str) -> grestws.SocketSchema[ChatServer, ChatClient, None]:
    """The chat schema as a client with ``token``."""
    return ChatApi.use(grestws.BearerAuth(token))


# -- uvicorn examples.chat.asgi:app ---------------------------------------------------------


@pytest.mark.slow
class TestChatUnderUvicorn:
    async def test_one_token_for_http_routes_and_the_socket(self) -> None:
        async with uvicorn_process("examples.chat.asgi:app") as served:
            inbox = ChatInbox()
            async with grestws.connect(served.ws_url, as_user("secret-ann"), handlers=inbox) as client:
                reply = await client.outgoing.send_message(HELLO)
                pushed = await asyncio.wait_for(inbox.messages.get(), WAIT)
            assert (pushed.id, pushed.sender_id) == (reply.message_id, "ann")

            auth = grestws.BearerAuth("secret-bob")
            async with httpx.AsyncClient(base_url=served.http_url, auth=auth, timeout=WAIT) as http:
                health = await http.get("/health")
                listed = await http.get("/api/messages")
            assert (health.status_code, health.text) == (200, "ok")
            assert listed.status_code == 200
            assert listed.headers["content-type"] == "application/json"
            latest = listed.json()[-1]
            assert {"id": reply.message_id, "text": "hi", "senderId": "ann"}.items() <= latest.items()

    async def test_a_bad_token_is_refused_on_both(self) -> None:
        async with uvicorn_process("examples.chat.asgi:app") as served:
            async with httpx.AsyncClient(base_url=served.http_url, timeout=WAIT) as http:
                forged = await http.get("/api/messages", auth=grestws.BearerAuth("forged"))
                missing = await http.get("/api/messages")
                public = await http.get("/health")
            assert (forged.status_code, forged.text.strip()) == (401, "Invalid token")
            assert forged.headers["www-authenticate"] == "Bearer"
            assert (missing.status_code, missing.text.strip()) == (401, "A bearer token is required")
            assert public.status_code == 200

            with pytest.raises(grestws.NotAuthorizedError) as caught:
                await grestws.connect(served.ws_url, as_user("forged"))
            assert (caught.value.type, caught.value.message) == ("NOT_AUTHORIZED", "Invalid token")

    async def test_sigterm_closes_sockets_with_1012_then_runs_the_lifespan_shutdown(self) -> None:
        async with uvicorn_process("examples.chat.asgi:app") as served:
            client = await grestws.connect(
                served.ws_url, as_user("secret-ann"), handlers=ChatInbox(), reconnect=False
            )
            closed = asyncio.get_running_loop().create_future()
            client.on_close(lambda code, reason: closed.set_result(code))
            log = await served.stop()
            assert await asyncio.wait_for(closed, WAIT) == 1012
            await client.close()
        assert served.process.returncode in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in log


# -- hypercorn --------------------------------------------------------------------------------


class TestHypercorn:
    async def test_a_call_a_push_and_an_unknown_path(self) -> None:
        sock = listening_socket()
        port = sock.getsockname()[1]
        config = HypercornConfig()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns and closes the socket
        config.accesslog = None
        stop = asyncio.Event()
        serving = asyncio.create_task(hypercorn_serve(chat_app(), config, shutdown_trigger=stop.wait))
        try:
            url = f"ws://127.0.0.1:{port}"
            inbox = ChatInbox()
            async with grestws.connect(url, as_user("secret-ann"), handlers=inbox) as client:
                reply = await client.outgoing.send_message(HELLO)
                pushed = await asyncio.wait_for(inbox.messages.get(), WAIT)
            assert reply.success
            assert (pushed.id, pushed.text, pushed.sender_id) == (reply.message_id, "hi", "ann")

            with pytest.raises(grestws.ConnectError, match="HTTP 404"):
                await grestws.connect(url, ChatApi.contract.at("/nowhere"))
        finally:
            stop.set()
            await asyncio.wait_for(serving, STOP_WAIT)


# -- FastAPI, with the App mounted -------------------------------------------------------------


AUTH = grestws.BearerAuth(verify=chat.verify)
"""Module level: with ``from __future__ import annotations`` FastAPI evaluates the
annotations that name it in the module's namespace."""


def fastapi_app(socket_app: grestws.App) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncGenerator[None]:
        socket_app.check()
        yield
        await socket_app.shutdown()

    api = FastAPI(lifespan=lifespan)

    @api.get("/api/me")
    async def me(identity: Annotated[Identity, Depends(AUTH.require())]) -> dict[str, str]:
        return {"id": identity.id}

    @api.delete("/api/messages")
    async def purge(identity: Annotated[Identity, Depends(AUTH.require("chat:admin"))]) -> dict[str, str]:
        return {"purged_by": identity.id}

    api.mount("/rt", socket_app)
    return api


class TestFastApi:
    async def test_a_call_over_the_mounted_app_and_guarded_routes(self) -> None:
        socket_app = grestws.App()
        socket_app.add(ChatApi.use(AUTH), chat.ChatHandler)
        async with uvicorn_in_process(fastapi_app(socket_app)) as port:
            url = f"ws://127.0.0.1:{port}/rt"
            async with grestws.connect(url, as_user("secret-ann"), handlers=ChatInbox()) as client:
                reply = await client.outgoing.send_message(HELLO)
                assert reply.success
                assert len(socket_app.connections) == 1
            with pytest.raises(grestws.ConnectError, match="HTTP 404"):
                await grestws.connect(url, ChatApi.contract.at("/nowhere"))

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as http:
                me = await http.get("/api/me", auth=grestws.BearerAuth("secret-ann"))
                forged = await http.get("/api/me", auth=grestws.BearerAuth("forged"))
                forbidden = await http.delete("/api/messages", auth=grestws.BearerAuth("secret-ann"))
                allowed = await http.delete("/api/messages", auth=grestws.BearerAuth("secret-admin"))
        assert (me.status_code, me.json()) == (200, {"id": "ann"})
        assert (forged.status_code, forged.json()) == (401, {"detail": "Invalid token"})
        assert forged.headers["www-authenticate"] == "Bearer"
        assert (forbidden.status_code, forbidden.json()) == (403, {"detail": "needs Scope('chat:admin')"})
        assert (allowed.status_code, allowed.json()) == (200, {"purged_by": "admin"})


# -- grestws.asgi_auth on its own ------------------------------------------------------------


def guarded(auth: grestws.BearerAuth, **options: Any) -> Starlette:
    """A Starlette app behind BearerAuthMiddleware whose routes tell what they saw."""

    async def whoami(request: Request) -> Response:
        identity: Identity | None = getattr(request.state, "identity", None)
        return PlainTextResponse("nobody" if identity is None else identity.id)

    async def admin(request: Request) -> Response:
        identity = await auth.require("chat:admin")(request)
        return PlainTextResponse(identity.id)

    routes = [Route(path, whoami) for path in ("/health", "/static/app.js", "/me")]
    return Starlette(
        routes=[*routes, Route("/admin", admin)],
        middleware=[Middleware(BearerAuthMiddleware, auth=auth, **options)],
    )


@contextlib.asynccontextmanager
async def calling(app: Any, **options: Any) -> AsyncGenerator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, **options)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class TestBearerAuthMiddleware:
    async def test_guarded_and_public_paths(self) -> None:
        app = guarded(grestws.BearerAuth(verify=chat.verify), public={"/health", "/static/"})
        async with calling(app) as http:
            ann = await http.get("/me", auth=grestws.BearerAuth("secret-ann"))
            anonymous = await http.get("/me")
            health = await http.get("/health", auth=grestws.BearerAuth("secret-ann"))
            static = await http.get("/static/app.js")
        assert (ann.status_code, ann.text) == (200, "ann")
        assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, "Bearer")
        assert (health.status_code, health.text) == (200, "nobody")  # public: not even checked
        assert (static.status_code, static.text) == (200, "nobody")

    async def test_paths_are_relative_to_the_root_path(self) -> None:
        app = guarded(grestws.BearerAuth(verify=chat.verify), public={"/health"})
        async with calling(app, root_path="/chat") as http:
            health = await http.get("/chat/health")
            me = await http.get("/chat/me")
        assert (health.status_code, me.status_code) == (200, 401)

    async def test_the_identity_does_not_leak_into_the_servers_state(self) -> None:
        seen: list[dict[str, Any]] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["state"])
            await PlainTextResponse("ok")(scope, receive, send)

        shared: dict[str, Any] = {"db": "pool"}
        middleware = BearerAuthMiddleware(app, grestws.BearerAuth(verify=chat.verify))

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            await middleware({**scope, "state": shared}, receive, send)

        async with calling(with_state) as http:
            response = await http.get("/", auth=grestws.BearerAuth("secret-ann"))
        assert response.status_code == 200
        assert seen == [{"db": "pool", "identity": Identity("ann")}]
        assert shared == {"db": "pool"}

    async def test_websocket_and_lifespan_scopes_pass_through(self) -> None:
        seen: list[str] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["type"])

        middleware = BearerAuthMiddleware(app, grestws.BearerAuth(verify=chat.verify))

        async def nothing() -> dict[str, Any]:
            raise AssertionError("not read")

        async def ignore(message: Any) -> None:
            raise AssertionError("not sent")

        for kind in ("websocket", "lifespan"):
            await middleware({"type": kind, "path": "/ws/chat", "headers": []}, nothing, ignore)
        assert seen == ["websocket", "lifespan"]


class TestRequire:
    async def test_scopes_in_a_starlette_endpoint(self) -> None:
        app = guarded(grestws.BearerAuth(verify=chat.verify))
        async with calling(app) as http:
            ann = await http.get("/admin", auth=grestws.BearerAuth("secret-ann"))
            admin = await http.get("/admin", auth=grestws.BearerAuth("secret-admin"))
        assert (ann.status_code, ann.text) == (403, "needs Scope('chat:admin')")
        assert (admin.status_code, admin.text) == (200, "admin")

    def test_several_needs_are_all_required(self) -> None:
        auth = grestws.BearerAuth(verify=chat.verify)
        requirement = auth.require("a", grestws.AnyOf(grestws.Scope("b"), grestws.Scope("c")))
        assert requirement.permission is not None
        assert requirement.permission.allows(Identity("x", frozenset({"a", "c"})))
        assert not requirement.permission.allows(Identity("x", frozenset({"b", "c"})))
        assert auth.require().permission is None

    def test_a_client_object_cannot_guard_routes(self) -> None:
        with pytest.raises(grestws.InvalidStateError):
            grestws.BearerAuth("secret-ann").require()


STARLESS = textwrap.dedent(
    """
    import sys
    sys.modules["starlette"] = None  # as if it were not installed
    import grestws, grestws.auth

    async def verify(token):
        return None

    try:
        grestws.BearerAuth(verify=verify).require()
    except ImportError as exc:
        print(exc)
    """
)


@pytest.mark.slow
def test_grestws_auth_works_without_starlette() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", STARLESS], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    )
    assert proc.stdout.strip() == "BearerAuth.require needs starlette: pip install 'grestws[asgi]'"
