"""The wire protocol of PROTOCOL.md, without I/O: frames and envelopes in, bytes out.

Nothing here imports asyncio or websockets; every rule can be tested as data.
"""

from __future__ import annotations

from grestws.protocol.codec import (
    decode_frame,
    decode_result,
    encode_call,
    encode_error,
    encode_frame,
    encode_ok,
    encode_reply,
    validation_issues,
)
from grestws.protocol.frames import (
    CLOSE_HANDSHAKE_FAILED,
    CLOSE_INVALID_QUERY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN_LATER,
    HANDSHAKE_OK,
    PONG,
    ErrorContext,
    Frame,
    FrameType,
    ResultEnvelope,
)

__all__ = (
    "CLOSE_HANDSHAKE_FAILED",
    "CLOSE_INVALID_QUERY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_TRY_AGAIN_LATER",
    "HANDSHAKE_OK",
    "PONG",
    "ErrorContext",
    "Frame",
    "FrameType",
    "ResultEnvelope",
    "decode_frame",
    "decode_result",
    "encode_error",
    "encode_frame",
    "encode_call",
    "encode_ok",
    "encode_reply",
    "validation_issues",
)
