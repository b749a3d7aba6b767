"""Handshake middleware: code that runs once per connection, on either side, before ``k``.

A middleware subclasses :class:`Middleware` and overrides any of its three hooks; a schema
runs its middleware in the order of ``schema.use(a).use(b)``::

    class Locale(grestws.Middleware):
        def update_handshake(self, handshake: grestws.ClientHandshake) -> None:
            handshake.headers["accept-language"] = "et"           # client: into the h frame

        def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
            LOCALE.set(handshake.headers.get("accept-language", "en"))   # server: read h

On the server every ``parse_handshake`` runs first, in order, then every ``process``, in
order; raising an :class:`~grestws.exceptions.ApiError` in either refuses the connection
(``x`` with that error, close 4001), any other exception refuses it with SERVER_ERROR.
Context keys set in these hooks belong to the connection: every handler of it reads them,
no other connection sees them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from grestws.context import Connection, ConnectRequest
from grestws.permissions import Identity

__all__ = ("ClientHandshake", "Middleware", "ServerHandshake")


class ClientHandshake:
    """What client-side middleware may change before the ``h`` frame is sent.

    Attributes:
        headers: The handshake headers the ``h`` frame will carry (names lower-case by
            convention; browsers cannot set upgrade headers, so credentials go here).
        url: The URL being connected to.
    """

    __slots__ = ("headers", "url")

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers


class ServerHandshake:
    """What server-side middleware reads while a connection is being accepted.

    Attributes:
        headers: The headers of the client's ``h`` frame.
        request: The HTTP upgrade request the connection was opened with.
        connection: The connection being accepted (not open yet: nothing can be sent);
            on the server it is a :class:`~grestws.ServerConnection`.
        cookies_trusted: Whether the upgrade's cookies may be used (see :attr:`cookies`).
    """

    __slots__ = ("_cookies", "connection", "cookies_trusted", "headers", "request")

    def __init__(
        self,
        connection: Connection,
        headers: Mapping[str, str],
        request: ConnectRequest,
        *,
        cookies_trusted: bool = True,
    ) -> None:
        self.connection = connection
        self.headers = headers
        self.request = request
        self.cookies_trusted = cookies_trusted
        self._cookies: dict[str, str] | None = None

    @property
    def query(self) -> Mapping[str, str]:
        """The query parameters of the upgrade request, as strings."""
        return self.request.query

    @property
    def cookies(self) -> Mapping[str, str]:
        """The cookies of the upgrade request's ``Cookie`` header.

        Only the real upgrade request counts: a ``cookie`` header inside the ``h`` frame is
        ignored, so a script cannot forge a cookie that the browser holds as httpOnly.

        Empty when the upgrade came from a browser page of another origin that the App's
        ``allowed_origins`` does not list (:attr:`cookies_trusted` is False then): a
        browser sends a site's cookies with a socket opened by any other site, so trusting
        them would let that site act as the user (cross-site WebSocket hijacking).
        """
        if not self.cookies_trusted:
            return {}
        if self._cookies is None:
            jar: SimpleCookie = SimpleCookie()
            with contextlib.suppress(CookieError):  # a malformed header means no cookies
                jar.load(self.request.headers.get("cookie", ""))
            self._cookies = {name: morsel.value for name, morsel in jar.items()}
        return self._cookies


class Middleware:
    """Base class of handshake middleware; every hook is optional and does nothing here.

    One instance serves every connection of its schema, concurrently: keep per-connection
    state in context keys, not on the instance.
    """

    def update_handshake(self, handshake: ClientHandshake) -> None:
        """Client side, before ``h`` is sent: add headers (e.g. a bearer token).

        Runs in the context of the task that connects, so it can read that task's context
        keys.
        """

    def parse_handshake(self, handshake: ServerHandshake) -> None:
        """Server side, after ``h`` arrived: read headers, cookies and the query; set context
        keys; raise an ApiError (NOT_AUTHORIZED, FORBIDDEN, ...) to refuse."""

    async def process(self, handshake: ServerHandshake) -> None:
        """Server side, after every ``parse_handshake``: slow work such as verifying a token
        or loading a user. Raise an ApiError to refuse.

        Bounded by the app's handshake timeout, and cancelled when it runs out.
        """

    async def identify(self, handshake: ServerHandshake) -> Identity | None:
        """Server side, after every ``process``: who the connection acts for, with its
        scopes, or ``None`` for no identity. The first middleware that returns an
        identity wins; the result is kept for the connection's life and checked against
        every gated call (see :mod:`grestws.permissions`). A schema whose methods need
        scopes must have a middleware that implements this, or the server will not start.
        """
        return None


def overrides(middleware: Middleware, hook: str) -> bool:
    """Whether ``middleware`` implements ``hook`` (so the default need not run)."""
    return getattr(type(middleware), hook) is not getattr(Middleware, hook)
