"""Text frames to :class:`~grestws.protocol.frames.Frame` and back, and the envelopes.

Frames are handled as UTF-8 bytes: websockets hands text frames over undecoded and sends
UTF-8 bytes as text frames, and msgspec reads and writes bytes, so no message is copied
into a ``str`` on the way.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from grestws.exceptions import FrameError, Issue
from grestws.protocol.frames import ErrorContext, Frame, FrameType, ResultEnvelope

__all__ = (
    "decode_frame",
    "decode_result",
    "encode_call",
    "encode_error",
    "encode_frame",
    "encode_handshake",
    "encode_handshake_error",
    "encode_message",
    "encode_ok",
    "encode_positioned",
    "encode_reply",
    "encode_response",
    "message_key",
    "validation_issues",
)

_KINDS = {member.value: member for member in FrameType}
"""Frame types by their letter (``b"m"``)."""
_MSG = FrameType.MSG
_WITH_PATH = (FrameType.REQ, FrameType.RES, _MSG)
"""The frame types with a path; of these, ``r`` and ``s`` carry an id."""
_MAX_ID = 2**53 - 1  # the largest integer a JavaScript peer holds exactly
_MAX_ID_DIGITS = len(str(_MAX_ID))
_MAX_PATH = 256

_result_decoder = msgspec.json.Decoder(ResultEnvelope)
_encoder = msgspec.json.Encoder()
_OK_EMPTY = b'{"success":true,"type":"OK"}'
_OK_PREFIX = b'{"success":true,"type":"OK","data":'


VIEW_FROM = 16 * 1024
"""Data of a frame at least this long stays in the received message, as a ``memoryview``:
a large payload is never copied on its way to the decoder."""

_SHAPE = "expected <type>:<path>:<id>:<data>"


def decode_frame(raw: bytes | bytearray | str, positioned: bool = False) -> Frame:
    """Split one text frame into its four fields.

    The data of a large frame is a ``memoryview`` of ``raw`` (nothing is copied); a small
    frame's is ``bytes``.

    Args:
        raw: The frame.
        positioned: Whether an ``m`` frame may carry a stream position in its id field
            (a client that asked for recovery); it is kept in :attr:`Frame.position`.

    Raises:
        FrameError: The frame is not ``<type>:<path>:<id>:<data>`` with a known type, a
            path in ``r``/``s``/``m``, a decimal id from 1 to 2**53-1 in ``r``/``s`` and no
            id in ``m`` (unless ``positioned``). The path and id of ``h k x p o`` are
            ignored, since they carry none.
    """
    data: bytes | memoryview
    if type(raw) is bytes and len(raw) < VIEW_FROM:
        try:
            letter, path_bytes, id_bytes, data = raw.split(b":", 3)
        except ValueError:
            raise FrameError(_SHAPE) from None
    else:
        letter, path_bytes, id_bytes, data = _split(raw)
    kind = _KINDS.get(letter)
    if kind is None:
        raise FrameError(f"unknown frame type {letter[:8]!r}")
    if kind not in _WITH_PATH:
        return Frame(kind, "", None, data)
    if not path_bytes or len(path_bytes) > _MAX_PATH:
        raise FrameError(
            f"{kind.value.decode()!r} frame without a path" if not path_bytes else "path too long"
        )
    try:
        path = path_bytes.decode()
    except UnicodeDecodeError:
        raise FrameError("path is not UTF-8") from None
    if kind is _MSG:
        if not id_bytes:
            return Frame(kind, path, None, data)
        if positioned:
            return Frame(kind, path, None, data, id_bytes)
        raise FrameError("'m' frame must not carry an id")
    if not id_bytes.isdigit() or len(id_bytes) > _MAX_ID_DIGITS or id_bytes[0] == 48:
        raise FrameError(f"{kind.value.decode()!r} frame needs a decimal id from 1 upward")
    frame_id = int(id_bytes)
    if frame_id > _MAX_ID:
        raise FrameError(f"id over {_MAX_ID}")
    return Frame(kind, path, frame_id, data)


def _split(raw: bytes | bytearray | str) -> tuple[bytes, bytes, bytes, bytes | memoryview]:
    """The four fields of a frame that is not small ``bytes``: a ``str`` or a small
    ``bytearray`` is split as bytes; of a large frame only the head is copied, and the
    data is a ``memoryview`` of ``raw``."""
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) < VIEW_FROM:
        parts = bytes(raw).split(b":", 3)
        if len(parts) != 4:
            raise FrameError(_SHAPE)
        return parts[0], parts[1], parts[2], parts[3]
    first = raw.find(b":", 0, 9)
    second = raw.find(b":", first + 1) if first >= 0 else -1
    third = raw.find(b":", second + 1) if second >= 0 else -1
    if third < 0:
        raise FrameError(_SHAPE)
    head = bytes(raw[:third])
    return head[:first], head[first + 1 : second], head[second + 1 :], memoryview(raw)[third + 1 :]


def message_key(path: str) -> bytes:
    """How a message to ``path`` without a stream position starts, ``m:<path>``, up to the
    ``::`` that closes its empty id field: ``m:<path>::<data>``. A receiver may look up the
    bytes before a frame's first ``::`` among these keys instead of decoding the frame: a
    frame whose head is such a key decodes to exactly that message, with the rest as its
    data."""
    return b"m:" + path.encode()


def encode_frame(kind: FrameType, path: str = "", id: int | None = None, data: bytes = b"") -> bytes:
    """Join the four fields of a frame. ``data`` is JSON bytes, or ``b""`` for no value.

    Raises:
        FrameError: ``path`` contains ``:``.
    """
    if ":" in path:
        raise FrameError("a path cannot contain ':'")
    id_text = b"" if id is None else str(id).encode()
    return b"%b:%b:%b:%b" % (kind.value, path.encode(), id_text, data)


def encode_positioned(prefix: bytes, position: bytes, data: bytes) -> bytes:
    """An ``m`` frame with a stream position in its id field, for a client that asked
    for recovery (``prefix`` is the method's ``m:<path>:``)."""
    return b"%b%b:%b" % (prefix, position, data)


def encode_message(prefix: bytes, data: bytes) -> bytes:
    """An ``m`` frame: ``prefix`` is ``b"m:<path>:"``, ``data`` the JSON argument or ``b""``."""
    return prefix + b":" + data


def encode_reply(path: bytes, id: int, result: Any, has_result: bool = True) -> bytearray:
    """The ``s`` frame answering request ``id`` of ``path`` with success and ``result``
    (no data unless ``has_result``), encoded in one buffer: the result's JSON is written
    in place behind the frame's head, never copied.

    Raises:
        TypeError: msgspec cannot encode ``result``.
    """
    if not has_result:
        return bytearray(b"s:%b:%d:%b" % (path, id, _OK_EMPTY))
    out = bytearray(b"s:%b:%d:%b" % (path, id, _OK_PREFIX))
    _encoder.encode_into(result, out, len(out))
    out += b"}"
    return out


def encode_call(prefix: bytes, id: int | None, arg: Any, has_input: bool = True) -> bytearray:
    """An ``r`` frame (``id`` given) or ``m`` frame (``id`` None) of the method whose
    ``prefix`` is ``b"r:<path>:"`` or ``b"m:<path>:"``, with ``arg`` (nothing unless
    ``has_input``) encoded in place behind the frame's head.

    Raises:
        TypeError: msgspec cannot encode ``arg``.
    """
    out = bytearray(prefix + b":") if id is None else bytearray(b"%b%d:" % (prefix, id))
    if has_input:
        _encoder.encode_into(arg, out, len(out))
    return out


def encode_response(path: bytes, id: int, envelope: bytes) -> bytes:
    """An ``s`` frame answering request ``id`` of ``path`` with a result ``envelope``."""
    return b"s:%b:%d:%b" % (path, id, envelope)


def encode_handshake(headers: bytes) -> bytes:
    """The client's ``h`` frame with its headers as a JSON object."""
    return b"h:::" + headers


def encode_handshake_error(envelope: bytes) -> bytes:
    """The server's ``x`` frame refusing a handshake with an error ``envelope``."""
    return b"x:::" + envelope


def encode_ok(data: bytes | None) -> bytes:
    """The success envelope around already-encoded JSON ``data`` (``None``: no data)."""
    if data is None:
        return _OK_EMPTY
    return _OK_PREFIX + data + b"}"


def encode_error(
    type: str,
    status_code: int,
    *,
    data: bytes | None = None,
    message: str | None = None,
    timestamp: int | None = None,
    ref: str | None = None,
) -> bytes:
    """The error envelope; ``data`` is already-encoded JSON or ``None``."""
    out = b'{"success":false,"type":%b,"statusCode":%d' % (
        _encoder.encode(type),
        status_code,
    )
    if data is not None:
        out += b',"data":' + data
    context = ErrorContext(display_message=message, timestamp=timestamp, ref=ref)
    return out + b',"context":' + _encoder.encode(context) + b"}"


def decode_result(data: bytes | memoryview) -> ResultEnvelope:
    """Read the envelope of an ``s`` or ``x`` frame; its ``data`` stays raw.

    Raises:
        msgspec.ValidationError: the envelope lacks ``success`` or ``type``.
        msgspec.DecodeError: the data is not JSON.
    """
    return _result_decoder.decode(data)


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_FIELD = re.compile(r"field `(?P<name>[^`]+)`")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def validation_issues(error: Exception) -> list[Issue]:
    """Turn msgspec's error into PROTOCOL.md's issue list.

    ``Expected `str`, got `int` - at `$.items[0].name``` becomes the issue
    ``{"path": "items.0.name", "code": "invalid_type", "message": "Expected `str`, got `int`"}``.
    Any other exception raised while decoding (a ``RecursionError`` on data nested too
    deep for the decoder) is one issue at the top level, without its text.
    """
    if isinstance(error, RecursionError):
        return [Issue(path="", code="too_deep", message="Nested too deep to decode")]
    if not isinstance(error, msgspec.MsgspecError):
        return [Issue(path="", code="invalid_value", message="Cannot be decoded")]
    text = str(error)
    match = _AT.match(text)
    assert match is not None  # the pattern matches any text
    message = match["message"]
    parts = [name or index for name, index in _SEGMENT.findall(match["path"] or "") if name or index]
    if isinstance(error, msgspec.DecodeError) and not isinstance(error, msgspec.ValidationError):
        code = "invalid_json"
    elif message.startswith("Object missing required field"):
        code = "missing_field"
        field = _FIELD.search(message)
        if field:
            parts.append(field["name"])
    elif message.startswith("Object contains unknown field"):
        code = "unknown_field"
        field = _FIELD.search(message)
        if field:
            parts.append(field["name"])
    elif message.startswith("Expected") and ", got" in message:
        code = "invalid_type"
    else:
        code = "invalid_value"
    return [Issue(path=".".join(parts), code=code, message=message)]
