"""Result envelopes as values: the error envelope an ApiError sends, and the result or
error an incoming envelope stands for, typed by the called method's contract.

Nothing here does I/O; both sides of a connection use it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from grestws.contract.methods import MethodSpec
from grestws.exceptions import STANDARD_ERRORS, ApiError, GrestwsError, ServerError, ValidationError
from grestws.protocol import codec
from grestws.protocol.frames import ResultEnvelope

__all__ = ("error_envelope", "error_from_envelope", "new_ref", "read_response")

logger = logging.getLogger("grestws")

_encoder = msgspec.json.Encoder()
_MAX_UNKNOWN_TYPES = 256


def new_ref() -> str:
    """An opaque id that ties an error on the wire to its log entry."""
    return uuid.uuid4().hex[:16]


def ref_of(exc: BaseException) -> str:
    """The ref of an unexpected exception: made the first time it is asked for and kept
    on the exception, so that the SERVER_ERROR answer and every log line about it (the
    access log's included) carry the same one."""
    ref: str | None = getattr(exc, "_grestws_ref", None)
    if ref is None:
        ref = new_ref()
        with contextlib.suppress(AttributeError):  # an exception without a __dict__
            exc._grestws_ref = ref  # type: ignore[attr-defined]
    return ref


def error_envelope(error: ApiError[Any]) -> bytes:
    """The error envelope that sends ``error``, stamped with the current time.

    Data that cannot be encoded turns the error into SERVER_ERROR (logged with its ref).
    """
    try:
        data = None if error.data is None else _encoder.encode(error.data)
    except (TypeError, msgspec.EncodeError) as exc:
        ref = new_ref()
        logger.error("cannot encode the data of %s (ref %s)", error.type, ref, exc_info=exc)
        return error_envelope(ServerError(ref=ref))
    return codec.encode_error(
        error.type,
        error.status_code,
        data=data,
        message=error.message,
        timestamp=time.time_ns() // 1_000_000,
        ref=error.ref,
    )


_unknown_errors: dict[str, type[ApiError[Any]]] = {}


_OK_HEAD = codec.encode_ok(b"")[:-1]
_OK_HEAD_LENGTH = len(_OK_HEAD)


def read_response(spec: MethodSpec, data: bytes | memoryview) -> Any:
    """The result an ``s`` frame's data carries for a call of ``spec``.

    Raises:
        ApiError: the peer answered with an error (the declared class when declared).
        ValidationError: the data is no result envelope, or does not fit the success type.
    """
    if data[:_OK_HEAD_LENGTH] == _OK_HEAD and data[-1:] == b"}":
        # The envelope grestws writes: the result is all between its head and the final
        # brace, so it is decoded once, in place. Anything else takes the general path.
        try:
            return spec.decode_result(memoryview(data)[_OK_HEAD_LENGTH:-1])
        except Exception:  # the general path below says what is wrong
            pass
    try:
        envelope = codec.decode_result(data)
    except Exception as exc:  # msgspec errors, and RecursionError on deep data
        raise ValidationError(
            f"{spec.path}: the response is not a result envelope", data=codec.validation_issues(exc)
        ) from exc
    if envelope.success:
        try:
            return spec.decode_result(envelope.data or b"null")
        except Exception as exc:  # msgspec errors, and RecursionError on deep data
            raise ValidationError(
                f"{spec.path}: the response does not fit the method's success type",
                data=codec.validation_issues(exc),
            ) from exc
    raise error_from_envelope(envelope, spec)


def error_from_envelope(
    envelope: ResultEnvelope,
    spec: MethodSpec | None = None,
    *,
    errors: Mapping[str, type[ApiError[Any]]] | None = None,
) -> ApiError[Any]:
    """The exception an error envelope stands for: the class that ``spec`` (or else the
    ``errors`` mapping, or the standard errors) gives its type, with its typed data, or a
    class made for a type the contract does not know."""
    type_name = envelope.type
    if spec is not None:
        error_cls = spec.error_class(type_name)
    else:
        error_cls = (errors or {}).get(type_name) or STANDARD_ERRORS.get(type_name)
    data: Any = None
    if envelope.data:
        try:
            if error_cls is None:
                data = msgspec.json.decode(envelope.data)
            else:
                data = error_cls.data_decoder().decode(envelope.data)
        except Exception:  # msgspec errors, and RecursionError on deep data
            data = None
    if error_cls is None:
        error_cls = _unknown_error_class(type_name, envelope.status_code or 500)
    context = envelope.context
    if context is None:
        error = error_cls(data=data)
    else:
        error = error_cls(context.display_message, data=data, ref=context.ref, timestamp=context.timestamp)
    error.remote = True
    return error


def _unknown_error_class(type_name: str, status_code: int) -> type[ApiError[Any]]:
    error_cls = _unknown_errors.get(type_name)
    if error_cls is None:
        try:
            error_cls = ApiError.define(
                type_name, status_code, doc=f"{type_name}, not declared by the contract"
            )
        except GrestwsError:
            return ServerError
        if len(_unknown_errors) < _MAX_UNKNOWN_TYPES:
            _unknown_errors[type_name] = error_cls
    return error_cls
