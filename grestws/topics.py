"""Subscriptions declared in the contract (``@grestws.watch`` and ``@grestws.unwatch``),
served with rooms: the watchers of a topic for a key are the members of its room,
:func:`topic_room`, and ``app.rooms.send_to_topic`` pushes to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec

from grestws.connections import ServerConnection

__all__ = ("Membership", "serve_topics", "topic_room")

_encoder = msgspec.json.Encoder()


def topic_room(topic: str, key: object) -> str:
    """The room of the watchers of ``topic`` for ``key``: ``topic:document:"d1"`` (the key
    as JSON, so that keys of any type name distinct rooms)."""
    return f"topic:{topic}:{_encoder.encode(key).decode()}"


class Membership(Protocol):
    """What a watch needs of the rooms (:class:`~grestws.rooms.Rooms`)."""

    def join(self, conn: ServerConnection[Any], room: str) -> None: ...

    def leave(self, conn: ServerConnection[Any], room: str) -> None: ...


def serve_topics(rooms: Membership, conn: ServerConnection[Any]) -> None:
    """Serve the @watch and @unwatch methods of ``conn``'s contract: a watch runs the
    handler's method (the access check) and then joins the topic's room; an unwatch runs
    the handler's method if it has one, then leaves. The App calls it once the handler is
    made."""
    handler = conn.handler
    for spec in conn.schema.contract.client_to_server:
        if spec.topic is None:
            continue
        own = getattr(type(handler), spec.py_name, None)
        method = None if own is None or own is spec.function else getattr(handler, spec.py_name)
        if spec.watching and method is not None:
            conn.serve(spec, _watcher(rooms, conn, spec.topic, method))
        elif not spec.watching:
            conn.serve(spec, _unwatcher(rooms, conn, spec.topic, method))


def _watcher(
    rooms: Membership, conn: ServerConnection[Any], topic: str, check: Callable[[Any], Awaitable[None]]
) -> Callable[[Any], Awaitable[None]]:
    async def watch(key: Any) -> None:
        await check(key)
        rooms.join(conn, topic_room(topic, key))

    return watch


def _unwatcher(
    rooms: Membership,
    conn: ServerConnection[Any],
    topic: str,
    method: Callable[[Any], Awaitable[None]] | None,
) -> Callable[[Any], Awaitable[None]]:
    async def unwatch(key: Any) -> None:
        if method is not None:
            await method(key)
        rooms.leave(conn, topic_room(topic, key))

    return unwatch
