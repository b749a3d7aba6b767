"""The messages every peer sends, so that the bytes on the wire are the same for all.

The small shapes send :data:`ECHO` (67 bytes of JSON); the large shape sends
:data:`CATALOG` (about 16 KB: 100 nested items); the payload shapes send a
:class:`Document` whose JSON is exactly 100 B, 10 KB or 1 MB (:func:`document`); fan-out
pushes :class:`Tick` messages of the same size as :data:`ECHO`. Control messages
(:class:`StatsRequest`, :class:`FanoutRequest`) are not timed. Every peer accepts
messages of up to :data:`MAX_MESSAGE_SIZE`.
"""

from __future__ import annotations

import msgspec

__all__ = (
    "CATALOG",
    "ECHO",
    "MAX_MESSAGE_SIZE",
    "Attrs",
    "Catalog",
    "Document",
    "Echo",
    "FanoutRequest",
    "Item",
    "ServerStats",
    "StatsRequest",
    "Tick",
    "document",
    "tick",
)

MAX_MESSAGE_SIZE = 4 << 20
"""The largest message every peer's server and client accept, in bytes: a 1 MB
:class:`Document` with any framework's envelope around it, and room to spare (the
libraries' defaults are 1 MiB for websockets and grestws, 1,000,000 bytes for
python-socketio's server)."""


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


class Document(msgspec.Struct):
    """The request of the payload shapes, echoed back as the reply; ``body`` sets its size."""

    id: int
    title: str
    tags: list[str]
    body: str


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
    user: float = 0.0
    """The user-space part of ``cpu``: the rest is the kernel's (its sockets, above all)."""


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


_WORDS = "the quick brown fox jumps over the lazy dog "


def document(size: int) -> Document:
    """The :class:`Document` whose JSON is ``size`` bytes (at least its 71 bytes without a
    body): plain words, nothing JSON has to escape, the same for every call."""
    empty = Document(id=7, title="benchmark document", tags=["alpha", "beta"], body="")
    room = size - len(msgspec.json.encode(empty))
    if room < 0:
        raise ValueError(f"a document takes at least {size - room} bytes, not {size}")
    body = (_WORDS * (room // len(_WORDS) + 1))[:room]
    return Document(id=empty.id, title=empty.title, tags=empty.tags, body=body)


def tick(seq: int) -> Tick:
    """The ``seq``-th fan-out message (67 bytes of JSON for a two-digit ``seq``)."""
    return Tick(seq=seq, user="alice", text="hello, world!", ts=1_700_000_000_000)
