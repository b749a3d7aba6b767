"""Choosing a broker by URL, as ``grestws serve --broker URL`` does."""

from __future__ import annotations

from grestws.broker import Broker, LocalBroker

__all__ = ("broker_from_url",)


def broker_from_url(url: str) -> Broker:
    """The broker a URL names: ``redis://host:port/db`` (or ``rediss://``, ``unix://``)
    for :class:`~grestws.broker.redis.RedisBroker`, ``memory://`` for :class:`LocalBroker`.

    Raises:
        ValueError: an unknown scheme.
        ImportError: the Redis extra is not installed (``pip install "grestws[redis]"``).
    """
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        return LocalBroker()
    if scheme in ("redis", "rediss", "unix"):
        from grestws.broker.redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unknown broker URL {url!r}: expected redis://HOST:PORT/DB or memory://")
