"""Start a call at once, and make it a scheduled task only if it has to wait.

Most handlers of a push, and many of a request, never wait for anything: they decode,
update some state, maybe write an answer, and return. Giving each of them a task that the
event loop runs on its next iteration costs a task, a loop handle and an iteration per
message, and keeps all of those alive (and counted by the garbage collector) until the
loop gets to them. :func:`start` runs the coroutine's first step right away instead, the
way Python 3.12's eager tasks do, and hands the rest to the event loop only if it
suspends.

Inside the call, ``asyncio.current_task()`` is the call's own task from its first line to
its last, context variables are those of the context it was started in, and cancelling
that task cancels the call, whether or not it ever waited:

- On Python 3.12 and later this is ``asyncio.Task(..., eager_start=True)``.
- On Python 3.11 the task is created without being scheduled and entered as the current
  task for the first step. If the coroutine returns in that step and nothing touched or
  kept the task, that is all it cost, and the task object serves the next call. If it
  suspends, or if anything asked the task to be a task (``cancel()``,
  ``add_done_callback()``, ``get_coro()``, ...) or kept a reference to it, the same object
  becomes a scheduled task that carries on from where the first step stopped (or just
  ends, in the next loop iteration).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = ("start",)

Call = Coroutine[Any, Any, None]


if sys.version_info >= (3, 12):

    def start(
        loop: asyncio.AbstractEventLoop, coro: Call, context: contextvars.Context
    ) -> asyncio.Task[None] | None:
        """Run ``coro`` in ``context`` up to its first suspension.

        Returns:
            ``None`` if it returned in that step, else the task that runs the rest.

        Raises:
            What the step raised, but a ``CancelledError``: that ends the task cancelled,
            as in any task.
        """
        task = asyncio.Task(coro, loop=loop, context=context, eager_start=True)
        if not task.done():
            return task
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error
        return None

else:  # pragma: no cover - one of the two branches runs on any given Python
    _refcount = sys.getrefcount
    _weakrefcount = weakref.getweakrefcount

    _current_tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] = vars(asyncio.tasks)["_current_tasks"]
    """What ``asyncio.current_task(loop)`` reads and asyncio's ``_enter_task`` and
    ``_leave_task`` write (the C implementation's own dict), used here without the calls."""

    _YIELDED, _RETURNED, _RAISED = range(3)

    class _Call(asyncio.Task[None]):
        """A task whose first step already ran (or is running) outside the loop's queue.

        It is a real ``asyncio.Task`` once :meth:`_schedule` initialised it; before that it
        is only the identity ``current_task()`` returns, and every method that needs a
        real task makes it one first.
        """

        __slots__ = ("_call_context", "_call_coro", "_call_loop", "_outcome", "_scheduled", "_value")

        _call_context: contextvars.Context
        _call_coro: Call
        _call_loop: asyncio.AbstractEventLoop
        _outcome: int
        _scheduled: bool
        _value: Any

        def _schedule(self) -> None:
            """Become the task that carries on where the first step stopped."""
            if not self._scheduled:
                self._scheduled = True
                super().__init__(_carry_on(self), loop=self._call_loop, context=self._call_context)

        def cancel(self, msg: Any = None) -> bool:
            self._schedule()
            return super().cancel(msg)

        def add_done_callback(
            self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None
        ) -> None:
            self._schedule()
            super().add_done_callback(fn, context=context)

        def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
            self._schedule()
            return super().remove_done_callback(fn)

        def get_coro(self) -> Any:
            self._schedule()
            return super().get_coro()

        def get_loop(self) -> asyncio.AbstractEventLoop:
            self._schedule()
            return super().get_loop()

        def get_stack(self, *, limit: int | None = None) -> list[Any]:
            self._schedule()
            return super().get_stack(limit=limit)

        def print_stack(self, *, limit: int | None = None, file: Any = None) -> None:
            self._schedule()
            super().print_stack(limit=limit, file=file)

        def result(self) -> None:
            self._schedule()
            super().result()

        def exception(self) -> BaseException | None:
            self._schedule()
            return super().exception()

        def get_name(self) -> str:
            self._schedule()
            return super().get_name()

        def set_name(self, value: object) -> None:
            self._schedule()
            super().set_name(value)

        def __repr__(self) -> str:
            self._schedule()
            return super().__repr__()

    def _carry_on(task: _Call) -> Generator[Any, Any, None]:
        """The scheduled task's coroutine: finish what the first step left, then drive the
        call's own coroutine, passing every wake-up and every exception through."""
        outcome, value = task._outcome, task._value
        task._value = None
        if outcome == _RETURNED:
            return
        if outcome == _RAISED:
            raise value
        coro = task._call_coro
        yielded = value
        if yielded is None:  # a bare yield (asyncio.sleep(0)): this step is the next iteration
            try:
                yielded = coro.send(None)
            except StopIteration:
                return
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # a cancellation, or a bad yield: the call's to handle
                try:
                    yielded = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration:
                    return

    _spare: _Call | None = None
    """A task whose call returned in its first step, never scheduled, that nothing refers
    to any more (not even weakly): the next call's, rather than a new one."""

    def start(
        loop: asyncio.AbstractEventLoop, coro: Call, context: contextvars.Context
    ) -> asyncio.Task[None] | None:
        """Run ``coro`` in ``context`` up to its first suspension.

        Returns:
            ``None`` if it returned in that step, else the task that runs the rest.

        Raises:
            What the step raised, but a ``CancelledError``: that ends the task cancelled,
            as in any task. A task that something holds ends with what was raised too.
        """
        global _spare
        task = _spare
        if task is None:
            task = _Call.__new__(_Call)
            task._scheduled = False
        else:
            _spare = None  # a call started in this one's first step gets a task of its own
        task._call_loop = loop
        task._call_context = context
        task._call_coro = coro
        # What _leave_task and _enter_task do, without their calls: the outer task (the
        # one whose callback this is, if any) steps aside while this one runs.
        outer = _current_tasks.get(loop)
        _current_tasks[loop] = task
        outcome = _RETURNED
        value: Any = None
        try:
            value = context.run(coro.send, None)
            outcome = _YIELDED
        except StopIteration:
            pass
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # kept by the task, as a task keeps what its coroutine raised
            value = exc
            outcome = _RAISED
        finally:
            if outer is not None:
                _current_tasks[loop] = outer
            else:
                del _current_tasks[loop]
        if (
            outcome != _YIELDED
            and not task._scheduled
            and _refcount(task) == 2  # this function's own two references
            and not _weakrefcount(task)
        ):
            # Nothing refers to the task: it need not end as a task, and may serve again.
            del task._call_coro, task._call_context
            if _spare is None:
                _spare = task
            if outcome == _RAISED and not isinstance(value, asyncio.CancelledError):
                raise value
            return None
        # A task now, if it was not: it runs the rest, or holds the outcome (also for
        # whoever kept a reference to it: it is done in the next loop iteration). A task
        # scheduled during the step reads the outcome in the next iteration, not before.
        task._outcome = outcome
        task._value = value
        task._schedule()
        if outcome == _RAISED and not isinstance(value, asyncio.CancelledError):
            task.add_done_callback(_retrieve)  # raised here: nobody need ask the task
            raise value
        return task if outcome == _YIELDED else None

    def _retrieve(task: asyncio.Task[Any]) -> None:
        if not task.cancelled():
            task.exception()
