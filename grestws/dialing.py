"""How a client opens one connection: the URL it dials, the transport opened within the
handshake timeout, and the ``h``/``k`` handshake over it.

:class:`~grestws.client.Client` does this once per attempt; what it does around an
attempt (setup callbacks, waiting calls, reconnects) is its own.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from grestws._util import settle_allocator
from grestws.contract.contract import SocketSchema
from grestws.exceptions import ConnectionClosedError, HandshakeTimeoutError, ValidationError
from grestws.handshake import FirstFrame, offer
from grestws.middleware import ClientHandshake
from grestws.protocol.frames import CLOSE_INVALID_QUERY
from grestws.transports import Dialed, Dialer, Transport

__all__ = ("Headers", "dial", "handshake", "schema_url", "with_query")

Headers = Mapping[str, str] | Callable[[], Mapping[str, str] | Awaitable[Mapping[str, str]]]
"""Handshake headers, or a function giving them (a token provider), called for every
connection: the first and each reconnect."""


def schema_url(base: str, path: str) -> str:
    """``base`` with the schema's ``path`` appended, unless its path already ends with it.

    Raises:
        ValueError: ``base`` is not a ws:// or wss:// URL.
    """
    url = urlsplit(base)
    if url.scheme not in ("ws", "wss"):
        raise ValueError(f"expected a ws:// or wss:// URL, got {base!r}")
    prefix = url.path.rstrip("/")
    stem = path.rstrip("/")
    if stem and prefix.endswith(stem):
        prefix = prefix.removesuffix(stem)
    return urlunsplit((url.scheme, url.netloc, prefix + path, url.query, ""))


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its query."""
    parts = urlsplit(url)
    query = "&".join(filter(None, (parts.query, urlencode(params))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


async def dial(
    dialer: Dialer, url: str, upgrade_headers: Mapping[str, str], timeout: float, name: str
) -> Dialed:
    """Open the transport to ``url`` within ``timeout`` seconds (``name``: the URL as
    errors show it). Cancelling it cancels the dialer, which closes what it opened.

    Raises:
        ConnectError: it could not be opened.
        HandshakeTimeoutError: not within ``timeout``.
    """
    settle_allocator()
    try:
        async with asyncio.timeout(timeout):
            return await dialer(url, upgrade_headers)
    except TimeoutError as exc:
        raise HandshakeTimeoutError(f"{name}: no connection within {timeout:g} s") from exc


async def handshake(
    transport: Transport,
    schema: SocketSchema[Any, Any, Any],
    url: str,
    headers: Headers,
    extra: Mapping[str, str],
    timeout: float,
) -> FirstFrame:
    """Send ``h`` and wait for ``k``; close ``transport`` when it fails. The ``h`` headers
    are ``headers`` (or what their provider gives), then what each of the schema's
    middleware adds for ``url``, then ``extra``. Cancelling it closes the transport.

    Raises:
        ApiError: the server refused (``x``), as the schema's error class.
        ValidationError: the server closed with 4000 (invalid query).
        HandshakeTimeoutError: no answer within ``timeout``.
        ConnectionClosedError: the server closed the socket first.
        Exception: what the headers' provider raised.
    """
    try:
        sent = await _headers(headers, url, schema, extra)
        return await offer(transport, sent, schema.contract.errors, timeout)
    except BaseException as exc:
        await transport.close()
        if isinstance(exc, ConnectionClosedError) and exc.code == CLOSE_INVALID_QUERY:
            raise ValidationError(exc.reason or "Invalid query parameters", data=[]) from exc
        if isinstance(exc, TimeoutError):
            raise HandshakeTimeoutError(f"{url}: no handshake answer within {timeout:g} s") from exc
        raise


async def _headers(
    headers: Headers, url: str, schema: SocketSchema[Any, Any, Any], extra: Mapping[str, str]
) -> dict[str, str]:
    if callable(headers):
        made = headers()
        given = await made if inspect.isawaitable(made) else made
    else:
        given = headers
    shake = ClientHandshake(url, dict(given))
    for middleware in schema.middleware:
        middleware.update_handshake(shake)
    shake.headers.update(extra)
    return shake.headers
