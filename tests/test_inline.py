"""grestws.inline: a call runs at once, and becomes a scheduled task only if it waits.

Whatever the path, the call sees its own task as ``current_task()`` from first line to
last, its own context, and cancellation, timeouts and task groups behave as in any task.
Every scenario runs on asyncio's loop and on uvloop, from a loop callback (as a transport
delivers frames) and from inside another task.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import msgspec
import pytest
import uvloop

import grestws
from grestws import inline
from tests.conftest import StartServer

WAIT = 5.0
var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=0)

Scenario = Callable[[asyncio.AbstractEventLoop], Awaitable[None]]


def _start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    return inline.start(asyncio.get_running_loop(), coro, contextvars.copy_context())


async def _from_callback(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Start ``coro`` from a loop callback, where no task is current (as a transport does)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[asyncio.Task[None] | None] = loop.create_future()

    def step() -> None:
        try:
            done.set_result(_start(coro))
        except BaseException as exc:  # what the first step raised, for the test to see
            done.set_exception(exc)

    loop.call_soon(step)
    return await done


async def finishes_without_a_task(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[object] = []

    async def call() -> None:
        seen.append(isinstance(asyncio.current_task(), asyncio.Task))
        seen.append(var.get())
        var.set(7)

    context = contextvars.copy_context()
    assert inline.start(loop, call(), context) is None
    assert seen == [True, 0]
    assert context[var] == 7
    assert var.get() == 0


async def keeps_its_task_across_a_wait(loop: asyncio.AbstractEventLoop) -> None:
    gate: asyncio.Future[int] = loop.create_future()
    seen: list[object] = []

    async def call() -> None:
        before = asyncio.current_task()
        var.set(3)
        got = await gate
        seen.extend([before is asyncio.current_task(), got, var.get()])

    task = await _from_callback(call())
    assert task is not None
    assert not task.done()
    gate.set_result(5)
    await asyncio.wait_for(task, WAIT)
    assert seen == [True, 5, 3]
    assert var.get() == 0


async def a_timeout_entered_before_the_first_wait(loop: asyncio.AbstractEventLoop) -> None:
    outcome: list[str] = []

    async def call() -> None:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
        except TimeoutError:
            outcome.append("timed out")

    task = await _from_callback(call())
    assert task is not None
    await asyncio.wait_for(task, WAIT)
    assert outcome == ["timed out"]
    assert not task.cancelled()


async def is_cancelled_through_its_task(loop: asyncio.AbstractEventLoop) -> None:
    started = asyncio.Event()
    outcome: list[str] = []

    async def call() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    task = await _from_callback(call())
    assert task is not None
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    assert outcome == ["cancelled"]
    assert task.cancelled()


async def cancels_itself_without_waiting(loop: asyncio.AbstractEventLoop) -> None:
    async def call() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()

    assert await _from_callback(call()) is None  # it returned; the task ends cancelled


async def a_task_group_and_anyio(loop: asyncio.AbstractEventLoop) -> None:
    outcome: list[str] = []

    async def call() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(asyncio.sleep(0))
        with anyio.fail_after(WAIT):  # a cancel scope entered in the first step, left after a wait
            await anyio.lowlevel.checkpoint()
        outcome.append("done")

    task = await _from_callback(call())
    assert task is not None
    await asyncio.wait_for(task, WAIT)
    assert outcome == ["done"]


async def a_done_callback_added_in_the_first_step(loop: asyncio.AbstractEventLoop) -> None:
    ended: asyncio.Future[bool] = loop.create_future()

    async def call() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.add_done_callback(lambda t: ended.set_result(not t.cancelled()))
        assert "Task" in repr(task)
        assert task.get_loop() is loop

    assert await _from_callback(call()) is None
    assert await asyncio.wait_for(ended, WAIT)


async def sleep_zero_resumes_on_the_next_iteration(loop: asyncio.AbstractEventLoop) -> None:
    outcome: list[int] = []

    async def call() -> None:
        for i in range(3):
            await asyncio.sleep(0)
            outcome.append(i)

    task = _start(call())
    assert task is not None
    await asyncio.wait_for(task, WAIT)
    assert outcome == [0, 1, 2]


async def inside_another_task(loop: asyncio.AbstractEventLoop) -> None:
    outer = asyncio.current_task()
    seen: list[object] = []

    async def call() -> None:
        seen.append(asyncio.current_task() is not outer)

    assert _start(call()) is None
    assert seen == [True]
    assert asyncio.current_task() is outer


async def an_exception_is_raised_to_the_starter(loop: asyncio.AbstractEventLoop) -> None:
    reported: list[BaseException | None] = []
    loop.set_exception_handler(lambda _, context: reported.append(context.get("exception")))

    async def call() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await _from_callback(call())
    for _ in range(3):  # no task holds it: the loop has nothing to report
        await asyncio.sleep(0)
        gc.collect()
    assert reported == []


async def a_cancelled_error_ends_the_call(loop: asyncio.AbstractEventLoop) -> None:
    async def call() -> None:
        raise asyncio.CancelledError

    assert await _from_callback(call()) is None  # as a task would end: cancelled, not raised


async def an_exception_ends_a_kept_task_too(loop: asyncio.AbstractEventLoop) -> None:
    reported: list[BaseException | None] = []
    loop.set_exception_handler(lambda _, context: reported.append(context.get("exception")))
    kept: list[asyncio.Task[Any]] = []

    async def call() -> None:
        kept.append(asyncio.current_task())  # type: ignore[arg-type]
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await _from_callback(call())
    (task,) = kept
    await asyncio.wait({task}, timeout=WAIT)
    assert isinstance(task.exception(), ValueError)
    del task, kept[:]
    gc.collect()
    assert reported == []  # raised to the starter: the task's copy is not reported again


async def a_task_kept_by_the_call_ends_as_a_task(loop: asyncio.AbstractEventLoop) -> None:
    kept: list[asyncio.Task[Any]] = []

    async def keeps() -> None:
        task = asyncio.current_task()
        assert task is not None
        kept.append(task)

    async def forgets() -> None:
        kept.append(asyncio.current_task())  # type: ignore[arg-type]
        kept.pop()

    assert await _from_callback(keeps()) is None
    assert await _from_callback(forgets()) is None
    assert await _from_callback(forgets()) is None
    (task,) = kept
    await asyncio.wait_for(task, WAIT)  # it ends, as a task does
    assert task.done()
    assert task.result() is None


async def a_call_started_in_another_calls_first_step(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[int] = []  # ids: a task nothing keeps may serve again

    async def inner() -> None:
        seen.append(id(asyncio.current_task()))

    async def outer() -> None:
        seen.append(id(asyncio.current_task()))
        assert inline.start(loop, inner(), contextvars.copy_context()) is None
        seen.append(id(asyncio.current_task()))

    for _ in range(3):
        assert await _from_callback(outer()) is None
    for first in range(0, len(seen), 3):
        outer_task, inner_task, outer_again = seen[first : first + 3]
        assert inner_task != outer_task == outer_again


SCENARIOS: list[Scenario] = [
    finishes_without_a_task,
    keeps_its_task_across_a_wait,
    a_timeout_entered_before_the_first_wait,
    is_cancelled_through_its_task,
    cancels_itself_without_waiting,
    a_task_group_and_anyio,
    a_done_callback_added_in_the_first_step,
    sleep_zero_resumes_on_the_next_iteration,
    inside_another_task,
    an_exception_is_raised_to_the_starter,
    an_exception_ends_a_kept_task_too,
    a_cancelled_error_ends_the_call,
    a_task_kept_by_the_call_ends_as_a_task,
    a_call_started_in_another_calls_first_step,
]


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_inline(scenario: Scenario, loop_kind: str, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        await asyncio.wait_for(scenario(asyncio.get_running_loop()), WAIT)

    caplog.set_level(logging.CRITICAL, logger="asyncio")
    if loop_kind == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())


# -- over real servers ---------------------------------------------------------------------


class Probe(msgspec.Struct):
    wait: bool


class Seen(msgspec.Struct):
    same_task: bool
    timed_out: bool


class ProbeServer(Protocol):
    @grestws.request
    async def probe(self, req: Probe) -> Seen: ...

    @grestws.notify
    async def ping_back(self, req: Probe) -> None: ...


class ProbeClient(Protocol):
    @grestws.notify
    async def pushed(self, msg: Seen) -> None: ...


ProbeApi = grestws.SocketContract("Probe", client_to_server=ProbeServer, server_to_client=ProbeClient).at(
    "/probe"
)


async def _probe(wait: bool) -> Seen:
    """What a handler sees: its task across an ``asyncio.timeout()`` entered before any
    wait, and whether the timeout fired (``wait``: it awaits something that never comes)."""
    task = asyncio.current_task()
    timed_out = False
    try:
        async with asyncio.timeout(0.01 if wait else WAIT):
            if wait:
                await asyncio.Event().wait()
    except TimeoutError:
        timed_out = True
    return Seen(same_task=task is not None and task is asyncio.current_task(), timed_out=timed_out)


class ProbeHandler(ProbeServer):
    def __init__(self, conn: grestws.ServerConnection[ProbeClient]) -> None:
        self.conn = conn

    async def probe(self, req: Probe) -> Seen:
        return await _probe(req.wait)

    async def ping_back(self, req: Probe) -> None:
        await self.conn.outgoing.pushed(await _probe(req.wait))


class ProbeInbox(ProbeClient):
    def __init__(self) -> None:
        self.seen: asyncio.Queue[Seen] = asyncio.Queue()

    async def pushed(self, msg: Seen) -> None:
        self.seen.put_nowait(Seen(msg.same_task and (await _probe(False)).same_task, msg.timed_out))


@pytest.mark.parametrize("wait", [False, True], ids=["answers-at-once", "waits"])
async def test_handlers_see_their_own_task(start_server: StartServer, wait: bool) -> None:
    app = grestws.App()
    app.add(ProbeApi, ProbeHandler)
    server = await start_server(app)
    inbox = ProbeInbox()
    async with grestws.connect(server.url, ProbeApi, handlers=inbox) as client:
        seen = await asyncio.wait_for(client.outgoing.probe(Probe(wait)), WAIT)
        assert seen == Seen(same_task=True, timed_out=wait)
        await client.outgoing.ping_back(Probe(wait))
        pushed = await asyncio.wait_for(inbox.seen.get(), WAIT)
        assert pushed == Seen(same_task=True, timed_out=wait)
