"""The frame kinds of PROTOCOL.md and the result envelope carried by ``s`` and ``x``."""

from __future__ import annotations

import enum

import msgspec

__all__ = (
    "CLOSE_ABNORMAL",
    "CLOSE_GOING_AWAY",
    "CLOSE_HANDSHAKE_FAILED",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_QUERY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TRY_AGAIN_LATER",
    "DEAD_PEER_REASON",
    "RESTART_REASON",
    "HANDSHAKE_OK",
    "PONG",
    "ErrorContext",
    "Frame",
    "FrameType",
    "ResultEnvelope",
)


class FrameType(enum.Enum):
    """The one-letter frame types; the value is the letter's byte on the wire."""

    HANDSHAKE = b"h"
    HANDSHAKE_OK = b"k"
    HANDSHAKE_ERR = b"x"
    MSG = b"m"
    REQ = b"r"
    RES = b"s"
    PING = b"p"
    PONG = b"o"


class Frame(msgspec.Struct, frozen=True, gc=False):
    """One decoded frame.

    ``data`` holds the raw JSON bytes after the third ``:`` (``b""`` means "no value");
    it is decoded later by the called method's own typed decoder. A large payload is a
    ``memoryview`` of the received message rather than a copy of it.
    """

    type: FrameType
    path: str = ""
    id: int | None = None
    data: bytes | memoryview = b""
    position: bytes = b""
    """The stream position of a positioned ``m`` frame (see :mod:`grestws.protocol.positions`)."""


class ErrorContext(msgspec.Struct, omit_defaults=True, rename="camel"):
    """The ``context`` of an error envelope; every field is optional for a reader."""

    display_message: str | None = None
    timestamp: int | None = None
    ref: str | None = None


class ResultEnvelope(msgspec.Struct, omit_defaults=True, rename="camel"):
    """The data of ``s`` and ``x`` frames, as read from a peer.

    ``data`` stays raw JSON so that it is decoded once, by the method's (or the error's)
    typed decoder; an empty ``Raw`` means the envelope had no ``data``. A reader does not
    require ``statusCode`` or ``context``.
    """

    success: bool
    type: str
    data: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    status_code: int | None = None
    context: ErrorContext | None = None


HANDSHAKE_OK = b"k:::null"
"""The ``k`` frame a server sends once the handshake succeeded."""

PONG = b"o:::"
"""The answer to a ``p`` frame."""


CLOSE_NORMAL = 1000
"""Normal close: a graceful disconnect."""
CLOSE_GOING_AWAY = 1001
"""Going away: a browser leaving the page, a server going down without a restart."""
CLOSE_ABNORMAL = 1006
"""No close frame: the connection was lost (never sent on the wire)."""
CLOSE_POLICY = 1008
"""Policy: access revoked, or a peer that keeps breaking the limits."""
CLOSE_INTERNAL_ERROR = 1011
"""The server failed unexpectedly."""
CLOSE_SERVICE_RESTART = 1012
"""Service restart: the server shut down gracefully; reconnect at once."""
RESTART_REASON = "Server restarting"
"""The reason of the 1012 a grestws server closes with after a graceful drain: every
request it received was answered first, so a request the client has no answer to was not
run, and may be sent again whatever it does."""
DEAD_PEER_REASON = "keepalive ping timeout"
"""The reason a connection is closed with when its peer did not answer a ping in time."""
CLOSE_TRY_AGAIN_LATER = 1013
"""Try again later: overloaded, or a peer too slow to read what it is sent."""
CLOSE_INVALID_QUERY = 4000
"""Invalid query parameters at connect."""
CLOSE_HANDSHAKE_FAILED = 4001
"""Handshake failed (``x`` was sent first)."""
