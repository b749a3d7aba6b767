"""The messages every peer sends, so that the bytes on the wire are the same for all.

The small shapes send :data:`ECHO` (67 bytes of JSON); the large shape sends
:data:`CATALOG` (about 16 KB: 100 nested items); fan-out pushes :class:`Tick` messages of
the same size as :data:`ECHO`. Control messages (:class:`StatsRequest`,
:class:`FanoutRequest`) are not timed.
"""

from __future__ import annotations

import msgspec

__all__ = (
    "CATALOG",
    "ECHO",
    "Attrs",
    "Catalog",
    "Echo",
    "FanoutRequest",
    "Item",
    "ServerStats",
    "StatsRequest",
    "Tick",
    "tick",
)


class Echo(msgspec.Struct):
    """The small request, echoed back as the reply."""

    seq: int
    user: str
    text: str
    ts: int


class Attrs(msgspec.Struct):
    color: str
    size: str
    weight: float


class Item(msgspec.Struct):
    id: int
    name: str
    tags: list[str]
    price: float
    stock: int
    attrs: Attrs


class Catalog(msgspec.Struct):
    """The large request: a list of 100 nested structs, echoed back as the reply."""

    name: str
    items: list[Item]


class Tick(msgspec.Struct):
    """What the server pushes to every client in the fan-out shape."""

    seq: int
    user: str
    text: str
    ts: int


class StatsRequest(msgspec.Struct):
    """Ask the server for its RSS and CPU time; ``collect`` runs ``gc.collect()`` first."""

    collect: bool = False


class ServerStats(msgspec.Struct):
    rss: int
    """Resident set size in bytes."""
    cpu: float
    """User plus system CPU seconds since the process started."""


class FanoutRequest(msgspec.Struct):
    """Ask the server to push ``count`` ticks to every connected client."""

    count: int


ECHO = Echo(seq=42, user="alice", text="hello, world!", ts=1_700_000_000_000)
CATALOG = Catalog(
    name="catalog",
    items=[
        Item(
            id=i,
            name=f"catalog item number {i:04d}",
            tags=["alpha", "beta", "gamma", "delta"],
            price=19.5 + i,
            stock=100 + i,
            attrs=Attrs(color="blue", size="XL", weight=1.25),
        )
        for i in range(100)
    ],
)


def tick(seq: int) -> Tick:
    """The ``seq``-th fan-out message (67 bytes of JSON for a two-digit ``seq``)."""
    return Tick(seq=seq, user="alice", text="hello, world!", ts=1_700_000_000_000)
