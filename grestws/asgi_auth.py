"""HTTP routes behind the :class:`~grestws.BearerAuth` that guards the sockets: the same
``verify``, the same :class:`~grestws.Identity`, in Starlette, FastAPI or any ASGI app.

Two ways in, for two shapes of app::

    auth = grestws.BearerAuth(verify=users.verify_token)
    ChatApi = ChatContract.at("/ws/chat").use(auth)               # the sockets

    # A dependency per route (FastAPI's Depends, or called in a Starlette endpoint):
    # the identity, or HTTP 401 / 403.
    @api.delete("/api/messages/{message_id}")
    async def delete(identity: Annotated[Identity, Depends(auth.require("chat:admin"))]) -> None: ...

    # A middleware for a whole app: every HTTP request but the public paths needs a token;
    # the identity is request.state.identity.
    Starlette(routes, middleware=[Middleware(BearerAuthMiddleware, auth=auth, public={"/health"})])

Both refuse with Starlette's ``HTTPException`` or a plain response of their own, so no
exception handler needs registering. They need starlette (``pip install 'grestws[asgi]'``);
:mod:`grestws.auth` itself does not import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from typing import Any, Protocol

# At run time, not only for type checkers: FastAPI reads the annotation of
# Requirement.__call__ to know that it takes the request.
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from grestws.exceptions import NotAuthorizedError
from grestws.permissions import Identity, Permission
from grestws.transports.asgi import route_path

__all__ = ("CHALLENGE", "Authenticator", "BearerAuthMiddleware", "Requirement")

# Starlette's own types: the app a middleware wraps is called with exactly these.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Authenticator(Protocol):
    """What checks a request's credentials: :class:`~grestws.BearerAuth` on a server."""

    async def authenticate(self, headers: Mapping[str, str]) -> Identity:
        """The identity the headers prove.

        Raises:
            NotAuthorizedError: they prove none.
        """
        ...


CHALLENGE = {"WWW-Authenticate": "Bearer"}
"""The header of every 401 answer: the client should send a bearer token (RFC 6750)."""


class Requirement:
    """A dependency for HTTP routes: the identity of the request's bearer token, which must
    be allowed ``permission``. Made by :meth:`BearerAuth.require <grestws.BearerAuth.require>`.

    With FastAPI, ``Depends(auth.require(...))``; in a Starlette endpoint,
    ``identity = await need_admin(request)``.

    Args:
        auth: The server's BearerAuth: the one the sockets' schemas use.
        permission: What the identity must be allowed; ``None``: any verified identity.

    Behind :class:`BearerAuthMiddleware` it takes the identity the middleware verified;
    elsewhere it verifies the token itself.

    Concurrency: one instance serves any number of requests at once; each calls ``verify``
    at most once, so concurrent requests call it concurrently.
    """

    __slots__ = ("auth", "permission")

    def __init__(self, auth: Authenticator, permission: Permission | None = None) -> None:
        self.auth = auth
        self.permission = permission

    async def __call__(self, request: HTTPConnection) -> Identity:
        """The request's identity.

        Raises:
            HTTPException: 401 with ``WWW-Authenticate: Bearer`` for a missing or rejected
                token; 403 when the identity lacks the permission.
            InvalidStateError: ``auth`` has no ``verify`` (a client's).
        """
        identity = getattr(request.state, "identity", None)  # checked by BearerAuthMiddleware
        if not isinstance(identity, Identity):
            try:
                identity = await self.auth.authenticate(request.headers)
            except NotAuthorizedError as exc:
                raise HTTPException(401, exc.message, headers=CHALLENGE) from exc
        if self.permission is not None and not self.permission.allows(identity):
            raise HTTPException(403, f"needs {self.permission!r}")
        return identity

    def __repr__(self) -> str:
        return f"<Requirement {self.permission!r}>"


class BearerAuthMiddleware:
    """Pure ASGI middleware: every HTTP request needs a bearer token that ``auth`` verifies,
    except requests to ``public`` paths.

    A verified request reaches ``app`` with its identity in ``scope["state"]["identity"]``
    (Starlette and FastAPI: ``request.state.identity``); a missing or rejected token is
    answered 401 with ``WWW-Authenticate: Bearer``, and ``app`` never sees the request.
    Requests to public paths reach ``app`` unchecked, without an identity.

    Websocket and lifespan scopes pass through untouched: a socket proves its token in its
    ``h`` frame (browsers cannot set headers on an upgrade), where the schema's BearerAuth
    checks it with the same ``verify``.

    Args:
        app: The ASGI app it guards.
        auth: The server's BearerAuth: the one the sockets' schemas use.
        public: Paths served without a token, relative to the ``root_path`` of the scope;
            one that ends in ``/`` covers every path under it (``"/static/"``).

    Concurrency: one instance serves any number of requests at once; each request to a
    guarded path calls ``verify`` once, so concurrent requests call it concurrently.
    """

    __slots__ = ("_exact", "_prefixes", "app", "auth")

    def __init__(self, app: AsgiApp, auth: Authenticator, *, public: Collection[str] = ()) -> None:
        self.app = app
        self.auth = auth
        self._exact = frozenset(path for path in public if not path.endswith("/"))
        self._prefixes = tuple(path for path in public if path.endswith("/"))

    def is_public(self, path: str) -> bool:
        """Whether ``path`` (relative to the ``root_path``) is served without a token."""
        return path in self._exact or path.startswith(self._prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_public(route_path(scope)):
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            identity = await self.auth.authenticate(headers)
        except NotAuthorizedError as exc:
            await _unauthorized(send, exc.message or "Not authorized")
            return
        # A new scope and state: the server's state dict may be shared between requests.
        state = {**scope.get("state", {}), "identity": identity}
        await self.app({**scope, "state": state}, receive, send)


async def _unauthorized(send: Send, message: str) -> None:
    body = message.encode() + b"\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        *((name.lower().encode(), value.encode()) for name, value in CHALLENGE.items()),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
