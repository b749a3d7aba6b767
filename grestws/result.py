"""A result-style alternative to ``try``/``except`` around calls.

match await as_result(client.outgoing.send_message(req)):
    case Ok(value):
        print(value.message_id)
    case Err(RoomFull() as error):
        print("full:", error.data)
    case Err(error):
        raise error
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Generic, TypeVar

from grestws.exceptions import ApiError

__all__ = ("Err", "Ok", "Result", "as_result")

T = TypeVar("T")


class Ok(Generic[T]):
    """A call's success value."""

    __slots__ = ("value",)
    __match_args__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Ok({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ok) and bool(other.value == self.value)  # pyright: ignore[reportUnknownMemberType,reportUnknownArgumentType]

    __hash__ = None  # type: ignore[assignment]


class Err:
    """A call's error as the peer sent it (declared class, typed data)."""

    __slots__ = ("error",)
    __match_args__ = ("error",)

    def __init__(self, error: ApiError[object]) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Err({self.error!r})"


Result = Ok[T] | Err
"""``Ok[T] | Err``."""


async def as_result(call: Awaitable[T]) -> Result[T]:
    """Await ``call``; return ``Ok(value)``, or ``Err(error)`` for an :class:`ApiError`.

    Other failures (a closed connection, a timeout) are still raised: they are not answers.
    Cancelling it cancels ``call``.
    """
    try:
        return Ok(await call)
    except ApiError as error:
        return Err(error)
