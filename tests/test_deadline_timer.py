"""grestws.deadlines.Deadlines: many deadlines on one loop timer, a dict of each key's deadline and value."""

from __future__ import annotations

import asyncio
import math
from time import monotonic

from grestws.deadlines import Deadlines


async def test_a_due_key_expires_once_and_the_others_stay() -> None:
    expired: list[tuple[str, int]] = []
    done = asyncio.Event()

    def expire(key: str, value: int) -> None:
        expired.append((key, value))
        done.set()

    deadlines: Deadlines[str, int] = Deadlines(asyncio.get_running_loop(), expire)
    deadlines.add("never", math.inf, 1)
    deadlines.add("due", monotonic() - 1, 2)
    assert len(deadlines) == 2
    assert "due" in deadlines
    await asyncio.wait_for(done.wait(), 5)
    assert expired == [("due", 2)]
    assert list(deadlines) == ["never"]


async def test_a_key_popped_before_its_deadline_never_expires() -> None:
    expired: list[str] = []
    done = asyncio.Event()

    def expire(key: str, _: None) -> None:
        expired.append(key)
        done.set()

    deadlines: Deadlines[str, None] = Deadlines(asyncio.get_running_loop(), expire)
    deadlines.add("gone", monotonic() - 1, None)
    deadlines.pop("gone", None)
    deadlines.pop("never there", None)
    deadlines.add("marker", monotonic() - 1, None)  # due at the same timer as "gone" was
    await asyncio.wait_for(done.wait(), 5)
    assert expired == ["marker"]
    assert not deadlines


def test_iterating_is_over_a_snapshot() -> None:
    loop = asyncio.new_event_loop()
    try:
        deadlines: Deadlines[int, None] = Deadlines(loop, lambda *_: None)
        for key in range(5):
            deadlines.add(key, math.inf, None)
        for key in deadlines:
            deadlines.pop(key, None)
            deadlines.add(key + 100, math.inf, None)
        assert sorted(deadlines) == [100, 101, 102, 103, 104]
        deadlines.clear()
        assert not deadlines
    finally:
        loop.close()
