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


_allocator_ready = False


def settle_allocator() -> None:
    """Let glibc's malloc serve asyncio's 256 KiB socket reads from its heap.

    asyncio reads a socket into a fresh 256 KiB buffer and shrinks it. That is above
    glibc's initial mmap threshold, so until glibc raises the threshold (which it does
    by itself the first time it frees a large block at full size, sooner or later) every
    read costs an mmap, an mremap and a munmap: over a third of a busy server's CPU. One
    large allocation freed here raises the threshold at once, as glibc would have. An
    explicit ``MALLOC_MMAP_THRESHOLD_`` in the environment turns glibc's adjustment off,
    and this with it. Elsewhere than glibc it only allocates and frees 1 MiB, once.
    """
    global _allocator_ready
    if not _allocator_ready:
        _allocator_ready = True
        block = bytearray(1 << 20)
        del block
