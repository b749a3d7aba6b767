"""Choosing a broker by URL, as ``grestws serve --broker URL`` does.

``redis://HOST:PORT/DB`` (``rediss://`` for TLS, ``unix:///PATH?db=N`` for a socket) is a
:class:`~grestws.broker.redis.RedisBroker`; its own options go in the query::

    redis://127.0.0.1:6379/0?namespace=chat&presence_ttl=5&operation_timeout=1

``namespace``, ``presence_ttl``, ``operation_timeout`` and ``backoff`` (``FIRST,LONGEST``
seconds) are the broker's and are taken out of the URL; every other query parameter is left
in it for redis-py (``client_name``, ``health_check_interval``, ``ssl_cert_reqs``, ...),
and one that redis-py does not know is refused here rather than at the first connection.
``socket_timeout`` and ``socket_connect_timeout`` are refused too: the broker sets them
from ``operation_timeout`` (and its subscriber must not time out while the channel is
quiet). ``memory://`` is the :class:`~grestws.broker.LocalBroker` (no other process).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from grestws.broker import Broker, LocalBroker, redact

__all__ = ("broker_from_url", "redact")

_EXPECTED = "expected redis://HOST:PORT/DB, rediss://HOST:PORT/DB, unix:///PATH or memory://"
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_OWN = ("namespace", "presence_ttl", "operation_timeout", "backoff")
_SET_BY_BROKER = ("socket_timeout", "socket_connect_timeout")


def broker_from_url(url: str) -> Broker:
    """The broker a URL names: a :class:`~grestws.broker.redis.RedisBroker` for
    ``redis://``, ``rediss://`` and ``unix://``, with the broker's options from the query
    (see the module's documentation); :class:`LocalBroker` for ``memory://``.

    Raises:
        ValueError: an unknown scheme, an option that is unknown (to the broker and to
            redis-py) or has a bad value, a malformed URL. The message never contains the
            URL's password.
        ImportError: the Redis extra is not installed (``pip install "grestws[redis]"``).
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or not scheme:
        raise ValueError(f"not a broker URL: {_EXPECTED}")
    if scheme == "memory":
        if rest:
            raise ValueError("memory:// takes nothing after the scheme")
        return LocalBroker()
    if scheme not in _REDIS_SCHEMES:
        raise ValueError(f"unknown broker URL scheme {scheme!r}: {_EXPECTED}")
    redis_url, options = _split_options(url)
    try:
        from grestws.broker.redis import RedisBroker
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] == "redis":
            raise ImportError('the Redis broker needs redis-py: pip install "grestws[redis]"') from exc
        raise
    _check_redis_url(redis_url, scheme)
    return RedisBroker(redis_url, **options)


def _split_options(url: str) -> tuple[str, dict[str, Any]]:
    """The URL without the broker's own query parameters, and those parameters parsed."""
    base, question, query = url.partition("?")
    query, hash_sign, fragment = query.partition("#")
    kept: list[str] = []
    raw: dict[str, str] = {}
    for item in query.split("&") if question else ():
        if not item:
            continue
        name_text, _, value_text = item.partition("=")
        name = unquote_plus(name_text)
        if name in _SET_BY_BROKER:
            raise ValueError(f"{name} is set by the broker: use operation_timeout")
        if name not in _OWN:
            kept.append(item)
            continue
        if name in raw:
            raise ValueError(f"{name} is given twice")
        raw[name] = unquote_plus(value_text)
    options: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "namespace":
            if not value:
                raise ValueError("namespace must not be empty")
            options[name] = value
        elif name == "backoff":
            first_text, comma, longest_text = value.partition(",")
            try:
                first, longest = _seconds(name, first_text), _seconds(name, longest_text)
            except ValueError:
                first = longest = math.nan
            if not (comma and first <= longest):
                raise ValueError(
                    f"backoff must be FIRST,LONGEST seconds with 0 < FIRST <= LONGEST, got {value!r}"
                )
            options[name] = (first, longest)
        else:
            options[name] = _seconds(name, value)
    rebuilt = base + (question + "&".join(kept) if kept else "") + hash_sign + fragment
    return rebuilt, options


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number of seconds, got {text!r}")
    return value


def _check_redis_url(url: str, scheme: str) -> None:
    """Refuse what redis-py would only refuse at the first connection: an unknown query
    parameter, a bad value, a socket URL without a path. Nothing is connected."""
    from redis.asyncio import ConnectionPool

    if scheme == "unix" and not urlsplit(url).path:
        raise ValueError("unix:// needs the socket's path: unix:///PATH")
    try:
        # redis-py leaves from_url's **kwargs untyped.
        pool = ConnectionPool.from_url(  # pyright: ignore[reportUnknownMemberType]
            url, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        pool.make_connection()  # type: ignore[no-untyped-call]
    except TypeError as exc:
        # AbstractConnection.__init__() got an unexpected keyword argument 'bogus'
        text = str(exc)
        if "unexpected keyword argument" not in text:
            raise ValueError(f"bad Redis URL: {text}") from None
        name = text.rpartition(" ")[2].strip("'")
        raise ValueError(
            f"unknown query parameter {name!r}: neither the broker's ({', '.join(_OWN)}) "
            "nor one that redis-py knows"
        ) from None
    except ValueError as exc:
        raise ValueError(f"bad Redis URL: {exc}") from None
