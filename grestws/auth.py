"""Bearer tokens, one object for HTTP (httpx) and for the WebSocket handshake.

:class:`BearerAuth` is both an ``httpx.Auth`` and a handshake :class:`~grestws.Middleware`,
so a client adds the same token to its HTTP requests and to its sockets, and a server checks
both with one verification function::

    # a client: the token from wherever the application keeps it, read for every request
    client_auth = BearerAuth(token=lambda: current_token())
    http = httpx.AsyncClient(auth=client_auth)                    # HTTP requests
    ChatApi = ChatContract.at("/ws/chat").use(client_auth)        # the socket's h frame

    # a server: one check for both
    server_auth = BearerAuth(verify=verify_token)                 # async (token) -> Identity | None
    ServerChatApi = ChatContract.at("/ws/chat").use(server_auth)
    identity = await server_auth.authenticate(request.headers)   # in an HTTP handler
    Depends(server_auth.require("chat:admin"))                    # a FastAPI dependency

A server whose sockets also serve callers without a token (its ``PUBLIC`` methods) uses
``BearerAuth(verify=..., allow_anonymous=True)``: a connection without a token is admitted
with no identity, and one with a token ``verify`` rejects is still refused.

HTTP routes of Starlette and FastAPI apps use it through :meth:`BearerAuth.require` or
:class:`grestws.asgi_auth.BearerAuthMiddleware`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, Protocol, cast

import httpx

from grestws.context import ContextKey
from grestws.exceptions import InvalidStateError, NotAuthorizedError
from grestws.middleware import ClientHandshake, Middleware, ServerHandshake
from grestws.permissions import AllOf, Identity, Permission, Scope

__all__ = ("BearerAuth", "IdentityDependency")

Verify = Callable[[str], Awaitable[Identity | None]]
TokenSource = str | Callable[[], str | None] | ContextKey[str]


class IdentityDependency(Protocol):
    """What :meth:`BearerAuth.require` makes: called with an HTTP request (Starlette's
    ``Request``), it gives the request's identity or raises an HTTP error."""

    async def __call__(self, request: Any) -> Identity: ...


class BearerAuth(Middleware, httpx.Auth):
    """A bearer token: sent by clients, checked by servers.

    Args:
        token: The client's token: a string, a function called for every request and
            connection (so a refreshed token is used from then on), or a context key read
            in the task that makes the request or connects. ``None`` on a server.
        verify: The server's check: the identity a token stands for, or ``None`` for a
            token that is unknown, expired or revoked. ``None`` on a client.
        header: The header that carries the token, in HTTP requests and in ``h``.
        allow_anonymous: A server's sockets admit a connection whose ``h`` carries no
            token (no ``header`` at all), with no identity: it may call ``PUBLIC``
            methods, and a gated method answers it NOT_AUTHORIZED per call. Needs
            ``verify``. HTTP is unaffected: :meth:`authenticate` and :meth:`require`
            still need a token.

    On a connection the token is checked once, at the handshake: a missing token (unless
    ``allow_anonymous``) or a rejected one refuses the connection with NOT_AUTHORIZED
    (``x``, close 4001), and the identity ``verify`` returns is the connection's for its
    life (see :mod:`grestws.permissions`). With ``allow_anonymous`` a token is still
    checked when one is sent: a header that is not a bearer token, or a token ``verify``
    rejects, refuses the connection and never makes it anonymous. One instance may serve
    any number of requests and connections concurrently.

    Raises:
        ValueError: ``allow_anonymous`` without ``verify``.
    """

    def __init__(
        self,
        token: TokenSource | None = None,
        *,
        verify: Verify | None = None,
        header: str = "authorization",
        allow_anonymous: bool = False,
    ) -> None:
        if allow_anonymous and verify is None:
            raise ValueError("allow_anonymous is a server's setting: it needs verify")
        self._token = token
        self._verify = verify
        # The token h carried, from parse_handshake to identify: one key per instance, so
        # two BearerAuths on one schema (different headers) never read each other's.
        self._seen = ContextKey[str | None](f"bearer-token-{id(self):x}")
        self.header = header.lower()
        self.allow_anonymous = allow_anonymous

    # -- client -----------------------------------------------------------------------

    def token(self) -> str | None:
        """The client's current token, from its source."""
        source = self._token
        if source is None or isinstance(source, str):
            return source
        if isinstance(source, ContextKey):
            return cast("ContextKey[str]", source).get(None)  # type: ignore[redundant-cast, unused-ignore]
        return source()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """httpx: add ``Authorization: Bearer <token>`` to the request."""
        token = self.token()
        if token is not None:
            request.headers[self.header] = f"Bearer {token}"
        yield request

    def update_handshake(self, handshake: ClientHandshake) -> None:
        """The same header in the ``h`` frame."""
        token = self.token()
        if token is not None:
            handshake.headers[self.header] = f"Bearer {token}"

    # -- server -----------------------------------------------------------------------

    async def authenticate(self, headers: Mapping[str, str]) -> Identity:
        """The identity of a request's bearer token: the one check for HTTP and sockets.

        ``allow_anonymous`` does not apply here: a request needs a token.

        Raises:
            NotAuthorizedError: no bearer token, or ``verify`` rejected it.
            InvalidStateError: this BearerAuth has no ``verify`` (a client's).
        """
        return await self._check(_bearer(headers.get(self.header, "")))

    def require(self, *needs: str | Permission) -> IdentityDependency:
        """A dependency for the HTTP routes of Starlette and FastAPI apps: the request's
        identity, checked with the same ``verify`` as the sockets, which must hold every
        scope (a ``str``) and be allowed every permission of ``needs``::

            @api.get("/api/messages")
            async def messages(identity: Annotated[Identity, Depends(auth.require())]) -> ...

            identity = await auth.require("chat:admin")(request)      # in a Starlette endpoint

        A missing or rejected token is answered 401 with ``WWW-Authenticate: Bearer``, a
        missing scope 403 (see :class:`grestws.asgi_auth.Requirement`). Needs starlette
        (``pip install 'grestws[asgi]'``). The dependency serves any number of requests at
        once, each calling ``verify`` once.

        Raises:
            InvalidStateError: this BearerAuth has no ``verify`` (a client's).
            ContractError: an empty scope name.
            ImportError: starlette is not installed.
        """
        if self._verify is None:
            raise InvalidStateError("this BearerAuth has no verify function: it is a client's")
        parts = [Scope(need) if isinstance(need, str) else need for need in needs]
        try:
            from grestws.asgi_auth import Requirement
        except ModuleNotFoundError as exc:
            if exc.name != "starlette" and not str(exc.name).startswith("starlette."):
                raise
            raise ImportError("BearerAuth.require needs starlette: pip install 'grestws[asgi]'") from exc
        if not parts:
            return Requirement(self)
        return Requirement(self, parts[0] if len(parts) == 1 else AllOf(*parts))

    def parse_handshake(self, handshake: ServerHandshake) -> None:
        """Take the token from the ``h`` headers; refuse a connection without one, unless
        ``allow_anonymous`` and the header is absent.

        Raises:
            NotAuthorizedError: no bearer token (with ``allow_anonymous``: a header that
                is there but holds no bearer token).
        """
        value = handshake.headers.get(self.header)
        token = _bearer(value or "")
        if token is None:
            if not self.allow_anonymous:
                raise NotAuthorizedError("A bearer token is required")
            if value is not None:
                raise NotAuthorizedError("Invalid token")
        self._seen.set(token)

    async def identify(self, handshake: ServerHandshake) -> Identity | None:
        """Verify the token once for the connection; refuse it when ``verify`` does.

        Returns:
            The token's identity; ``None`` (no identity) for a connection that sent no
            token, when ``allow_anonymous``.

        Raises:
            NotAuthorizedError: ``verify`` rejected the token.
        """
        token = self._seen.get(None)
        if token is None and self.allow_anonymous:
            return None
        return await self._check(token)

    async def _check(self, token: str | None) -> Identity:
        if self._verify is None:
            raise InvalidStateError("this BearerAuth has no verify function: it is a client's")
        if token is None:
            raise NotAuthorizedError("A bearer token is required")
        identity = await self._verify(token)
        if identity is None:
            raise NotAuthorizedError("Invalid token")
        return identity


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
