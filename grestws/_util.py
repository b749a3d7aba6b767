"""Small helpers shared by the client and the server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Opening(Generic[T]):
    """Something that opens when awaited and also closes when used with ``async with``.

    ``x = await opener`` opens and hands the result over; ``async with opener as x`` opens
    and closes on the way out.
    """

    __slots__ = ("_close", "_open", "_value")

    def __init__(self, open: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[Any]]) -> None:
        self._open = open
        self._close = close
        self._value: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._open().__await__()

    async def __aenter__(self) -> T:
        self._value = await self._open()
        return self._value

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._value is not None:
            await self._close(self._value)
