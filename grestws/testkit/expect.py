"""Expectations on calls and on the server's pushes: :func:`expect` and :func:`when`.

::

    await expect(ann.call.send_message(req)).to_match({"success": True})
    error = await expect(ann.call.delete_message(req)).to_be_error(grestws.ForbiddenError)
    await expect(ann.call.send_message(empty)).to_fail_validation("text")
    message = await expect(bob.mock.new_message).to_match({"text": "hi", "senderId": "ann"})
    when(bob.mock.are_you_there).reply(True)

Both are typed from the contract: ``to_match`` returns the method's success type (or the
push's argument type), ``to_be_error`` the error class it was given. A failure raises
AssertionError with what did not match and the end of the client's wire log.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, NoReturn, TypeVar, overload

from grestws.exceptions import ApiError, ValidationError
from grestws.testkit.client import LOG_TAIL, Call
from grestws.testkit.matching import describe, mismatches, shown
from grestws.testkit.mocks import MethodMock, Reply

__all__ = ("Answer", "CallExpectation", "PushExpectation", "expect", "when")

A = TypeVar("A")
R = TypeVar("R")
E = TypeVar("E", bound=ApiError[Any])

_ANYTHING: Any = object()
"""Stands for any argument at all."""


class CallExpectation(Generic[R]):
    """What a call must give. Each method awaits the call once; use one per call."""

    __slots__ = ("_call",)

    def __init__(self, call: Awaitable[R]) -> None:
        self._call = call

    def _name(self) -> str:
        return self._call.name if isinstance(self._call, Call) else "the call"

    def _fail(self, text: str, cause: BaseException | None = None) -> NoReturn:
        __tracebackhide__ = True
        if isinstance(self._call, Call):
            text = f"{text}\n\n{self._call.client.log.render(last=LOG_TAIL)}"
        raise AssertionError(text) from cause

    async def _outcome(self, wanted: str) -> R:
        __tracebackhide__ = True
        try:
            return await self._call
        except ApiError as exc:
            self._fail(f"{self._name()}: expected {wanted}, got the error {exc}", exc)
        except Exception as exc:
            self._fail(f"{self._name()}: expected {wanted}, got {type(exc).__name__}: {exc}", exc)

    async def to_match(self, expected: object) -> R:
        """Await the call; its result must match ``expected`` (see
        :mod:`grestws.testkit.matching`). Returns the result.

        Raises:
            AssertionError: the call failed, or its result does not match.
        """
        __tracebackhide__ = True
        result = await self._outcome(f"a result matching {shown(expected)}")
        problems = mismatches(result, expected)
        if problems:
            self._fail(f"{self._name()}: the result {describe(result, problems)}")
        return result

    async def to_be_error(self, error: type[E]) -> E:
        """Await the call; it must fail with ``error`` (a subclass of it counts). Returns
        the error, with its typed ``data``.

        Raises:
            AssertionError: the call succeeded, or failed otherwise.
        """
        __tracebackhide__ = True
        try:
            result = await self._call
        except error as exc:
            return exc
        except Exception as exc:
            self._fail(f"{self._name()}: expected {error.__name__}, got {type(exc).__name__}: {exc}", exc)
        return self._fail(f"{self._name()}: expected {error.__name__}, got the result {shown(result)}")

    async def to_fail_validation(self, *paths: str) -> ValidationError:
        """Await the call; it must fail with VALIDATION_ERROR, with an issue at each of
        ``paths`` (``"text"``, ``"items.0.name"``; a leading ``$.`` is allowed). Returns
        the error.

        Raises:
            AssertionError: the call did not fail validation, or not at those paths.
        """
        __tracebackhide__ = True
        error = await self.to_be_error(ValidationError)
        found = [issue.path for issue in error.data]
        missing = [path for path in paths if path.removeprefix("$").removeprefix(".") not in found]
        if missing:
            self._fail(f"{self._name()}: no validation issue at {missing}; the issues: {shown(error.data)}")
        return error


class PushExpectation(Generic[A, R]):
    """What the server must call on a test client: a push, or a request.

    Each method consumes the first call not consumed yet that fits, waiting for one (at
    most the client's timeout, or ``timeout``) if none has arrived. Cancel-safe.
    """

    __slots__ = ("_mock",)

    def __init__(self, mock: MethodMock) -> None:
        self._mock = mock

    async def to_match(self, expected: object, *, timeout: float | None = None) -> A:
        """Wait for a call whose argument matches ``expected``; returns the argument.

        Raises:
            AssertionError: none came within the timeout; says what came instead.
        """
        __tracebackhide__ = True
        return await self._take(expected, timeout)

    async def to_be_called(self, *, timeout: float | None = None) -> A:
        """Wait for a call, whatever its argument; returns the argument (``None`` for a
        method without one).

        Raises:
            AssertionError: none came within the timeout.
        """
        __tracebackhide__ = True
        return await self._take(_ANYTHING, timeout)

    def not_to_be_called(self) -> None:
        """Fail if a call arrived that nothing consumed yet. What the server sent before
        the response to a call the test awaited has arrived by then.

        Raises:
            AssertionError: one did; says which.
        """
        __tracebackhide__ = True
        left = list(self._mock.unconsumed())
        if left:
            args = ", ".join(shown(arrival.arg) for arrival in left[:5])
            self._fail(f"{self._mock.name}: expected no call, got {len(left)}: {args}")

    async def _take(self, expected: object, timeout: float | None) -> A:
        __tracebackhide__ = True
        mock = self._mock
        loop = asyncio.get_running_loop()
        wait = mock.timeout if timeout is None else timeout
        deadline = loop.time() + wait
        while True:
            for arrival in mock.unconsumed():
                if expected is _ANYTHING or not mismatches(arrival.arg, expected):
                    arrival.consumed = True
                    value: A = arrival.arg
                    return value
            left = deadline - loop.time()
            if left <= 0:
                return self._fail(self._missed(expected, wait))
            arrived = mock.next_arrival()  # made before waiting, so no call slips past
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), left)

    def _missed(self, expected: object, wait: float) -> str:
        mock = self._mock
        wanted = "" if expected is _ANYTHING else f" matching {shown(expected)}"
        lines = [f"{mock.name}: no call{wanted} within {wait:g} s"]
        left = list(mock.unconsumed())
        if not left:
            lines.append("nothing else arrived either")
        for arrival in left[:3]:
            lines.append(f"this one arrived and {describe(arrival.arg, mismatches(arrival.arg, expected))}")
        if expected is _ANYTHING and left:  # cannot be: anything matches
            lines.append("(calls arrived, but none could be taken)")
        if len(left) > 3:
            lines.append(f"... and {len(left) - 3} more")
        return "\n".join(lines)

    def _fail(self, text: str) -> NoReturn:
        __tracebackhide__ = True
        raise AssertionError(f"{text}\n\n{self._mock.log.render(last=LOG_TAIL)}")


class Answer(Generic[A, R]):
    """How a test client answers one of the server's calls from now on."""

    __slots__ = ("_mock",)

    def __init__(self, mock: MethodMock) -> None:
        self._mock = mock

    def reply(self, value: R) -> None:
        """Answer every later request with ``value``. Answered requests need no
        expectation (one may still check them).

        Raises:
            TypeError: the method is fire-and-forget: there is nothing to answer.
        """
        self._mock.answer(Reply.VALUE, value)

    def fail(self, error: ApiError[Any]) -> None:
        """Answer every later request with ``error`` (an error the method declares).

        Raises:
            TypeError: the method is fire-and-forget, or ``error`` is not an ApiError.
        """
        self._mock.answer(Reply.ERROR, error)

    def ignore(self) -> None:
        """Need no expectation for this method's calls, those so far included. It replaces
        a reply set before: a request is answered ROUTE_NOT_FOUND."""
        self._mock.answer(Reply.IGNORE)


def _mock_of(subject: object, function: str) -> MethodMock:
    if isinstance(subject, MethodMock):
        return subject
    raise TypeError(f"{function}() takes a test client's mock (client.mock.<method>), got {subject!r}")


@overload
def expect(subject: Callable[[], Awaitable[R]], /) -> PushExpectation[None, R]: ...
@overload
def expect(subject: Callable[[A], Awaitable[R]], /) -> PushExpectation[A, R]: ...
@overload
def expect(subject: Awaitable[R], /) -> CallExpectation[R]: ...
def expect(subject: object, /) -> Any:
    """Expectations on a call (``expect(ann.call.send_message(req))``) or on the server's
    calls to a test client (``expect(ann.mock.new_message)``).

    Raises:
        TypeError: ``subject`` is neither (``ann.call.send_message`` without calling it,
            say).
    """
    if isinstance(subject, MethodMock):
        return PushExpectation[Any, Any](subject)
    if inspect.isawaitable(subject):
        return CallExpectation[Any](subject)
    raise TypeError(
        f"expect() takes a call (client.call.<method>(arg)) or a mock (client.mock.<method>), got {subject!r}"
    )


@overload
def when(mock: Callable[[], Awaitable[R]], /) -> Answer[None, R]: ...
@overload
def when(mock: Callable[[A], Awaitable[R]], /) -> Answer[A, R]: ...
def when(mock: object, /) -> Any:
    """How a test client answers one of the server's calls:
    ``when(ann.mock.are_you_there).reply(True)``.

    Raises:
        TypeError: ``mock`` is not a test client's mock.
    """
    return Answer[Any, Any](_mock_of(mock, "when"))
