"""What travels between the nodes of a cluster: :class:`Envelope`, and its bytes."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

__all__ = ("Envelope", "Target", "decode_envelope", "encode_envelope")


class Target(enum.IntEnum):
    """Whom an envelope is for."""

    ROOM = 1
    USER = 2
    CONNECTION = 3
    EVERYONE = 4
    CLOSE_USER = 5
    CLOSE_CONNECTION = 6
    CLOSE_RESUMED = 7
    """Close the connection with that id: its session was resumed by a connection elsewhere."""


class Envelope(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One fan-out, as it travels between nodes.

    Attributes:
        origin: The node that published it (which has delivered it to its own already).
        target: :class:`Target`.
        name: The room, user id or connection id.
        frame: The encoded ``m`` frame, written as it is to every member.
        exclude: Connection ids that must not get it (the sender, say).
        only: The permission a member's identity must meet to get it, as
            :func:`~grestws.permissions.permission_to_builtins` gives it (``None``: all).
        code, reason: The close code and reason of a CLOSE_* envelope.
        seq: Its position in the origin's stream (from 1), when recovery is on; else 0.
        time: When it was published, in milliseconds since the epoch (with ``seq``).
    """

    origin: str
    target: Target
    name: str
    frame: bytes = b""
    exclude: tuple[str, ...] = ()
    only: Any = None
    code: int = 1000
    reason: str = ""
    seq: int = 0
    time: int = 0


_envelope_encoder = msgspec.msgpack.Encoder()
_envelope_decoder = msgspec.msgpack.Decoder(Envelope)


def encode_envelope(envelope: Envelope) -> bytes:
    """The envelope as bytes for the wire between nodes (msgpack)."""
    return _envelope_encoder.encode(envelope)


def decode_envelope(data: bytes) -> Envelope:
    """An envelope from :func:`encode_envelope`'s bytes.

    Raises:
        msgspec.DecodeError, msgspec.ValidationError: not an envelope.
    """
    return _envelope_decoder.decode(data)
