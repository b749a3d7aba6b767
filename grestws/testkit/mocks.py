"""The test client's side of the server's calls: every push and request is recorded.

A test client serves the ``server_to_client`` half with a :class:`Mocks` object: one
:class:`MethodMock` per method, under the method's Python name. Each call the server makes
becomes an :class:`Arrival` that an expectation (:func:`grestws.testkit.expect`) consumes.
A request is answered with the reply set by :func:`grestws.testkit.when`, or else with
ROUTE_NOT_FOUND, as a client without a handler would answer.

An arrival nothing consumed fails the test when the client disconnects
(:class:`UnconsumedCallsError`), unless it was answered by a reply set with ``when`` or
its method was told to ``ignore()`` what arrives.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterator
from typing import Any

from grestws.contract.contract import ContractHalf
from grestws.contract.methods import MethodKind, MethodSpec
from grestws.exceptions import ApiError, RouteNotFoundError
from grestws.testkit.matching import shown
from grestws.testkit.wire import WireLog

__all__ = (
    "Arrival",
    "MethodMock",
    "Mocks",
    "Reply",
    "UnconsumedCallsError",
    "method_mocks",
    "unconsumed_problem",
)


class UnconsumedCallsError(AssertionError):
    """Calls from the server that no expectation consumed, found when a test client
    disconnected."""


class Reply(enum.Enum):
    """How a :class:`MethodMock` answers: not at all (a request gets ROUTE_NOT_FOUND), with
    a value, with an error, or by ignoring what arrives."""

    NONE = "none"
    VALUE = "value"
    ERROR = "error"
    IGNORE = "ignore"


class Arrival:
    """One call from the server: its argument (``None`` for a method without one) and
    whether a test must still consume it."""

    __slots__ = ("arg", "consumed", "required")

    def __init__(self, arg: Any, required: bool) -> None:
        self.arg = arg
        self.required = required
        self.consumed = False


class MethodMock:
    """Serves one ``server_to_client`` method for a test client and records its calls.

    Concurrency: the session calls it from the event loop; expectations wait on it from
    the test's task; both run on one loop.
    """

    __slots__ = ("_changed", "_reply", "arrivals", "log", "owner", "spec", "timeout")

    def __init__(self, spec: MethodSpec, owner: str, log: WireLog, timeout: float) -> None:
        self.spec = spec
        self.owner = owner
        self.log = log
        self.timeout = timeout
        """Seconds an expectation waits for a call, unless it says otherwise."""
        self.arrivals: list[Arrival] = []
        self._reply: tuple[Reply, Any] = (Reply.NONE, None)
        self._changed: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<MethodMock {self.owner}.mock.{self.spec.py_name}>"

    @property
    def name(self) -> str:
        """How tests name it: ``ann.mock.new_message``."""
        return f"{self.owner}.mock.{self.spec.py_name}"

    async def __call__(self, arg: Any = None) -> Any:
        kind, value = self._reply
        answered = self.spec.kind is MethodKind.REQUEST and kind in (Reply.VALUE, Reply.ERROR)
        self.arrivals.append(Arrival(arg, required=not answered and kind is not Reply.IGNORE))
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        if self.spec.kind is MethodKind.NOTIFY:
            return None
        if kind is Reply.VALUE:
            return value
        if kind is Reply.ERROR:
            raise value
        raise RouteNotFoundError(f"{self.name} has no reply: set one with when({self.name}).reply(...)")

    def answer(self, kind: Reply, value: Any = None) -> None:
        """Answer every later call this way."""
        if kind in (Reply.VALUE, Reply.ERROR) and self.spec.kind is MethodKind.NOTIFY:
            raise TypeError(f"{self.name} is fire-and-forget: there is no reply to set")
        if kind is Reply.ERROR and not isinstance(value, ApiError):
            raise TypeError(f"a mock fails with an ApiError, not {value!r}")
        self._reply = (kind, value)
        if kind is Reply.IGNORE:
            for arrival in self.arrivals:
                arrival.required = False

    def unconsumed(self) -> Iterator[Arrival]:
        """The arrivals no expectation took yet, oldest first."""
        return (arrival for arrival in self.arrivals if not arrival.consumed)

    def next_arrival(self) -> asyncio.Event:
        """An event set when the next call arrives (made now, so none is missed)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def forget(self) -> None:
        """Drop every arrival (a new connection starts with none)."""
        self.arrivals.clear()


class Mocks:
    """One :class:`MethodMock` per method of a ``server_to_client`` half, as attributes
    named like the methods: the handler object a test client serves the server's calls
    with. It has no other public attribute, so no method name can clash."""

    def __init__(self, half: ContractHalf, owner: str, log: WireLog, timeout: float) -> None:
        for name, spec in half.methods.items():
            setattr(self, name, MethodMock(spec, owner, log, timeout))

    def __repr__(self) -> str:
        return f"<Mocks {', '.join(vars(self))}>"


def method_mocks(mocks: Mocks) -> list[MethodMock]:
    """Every method's mock of ``mocks`` (a function, so no method name can hide it)."""
    return [value for value in vars(mocks).values() if isinstance(value, MethodMock)]


def unconsumed_problem(mocks: Mocks) -> str | None:
    """What arrived and must be consumed but was not, or None."""
    lines: list[str] = []
    for mock in method_mocks(mocks):
        left = [arrival for arrival in mock.unconsumed() if arrival.required]
        lines.extend(f"  {mock.name}({shown(arrival.arg)})" for arrival in left[:10])
        if len(left) > 10:
            lines.append(f"  ... and {len(left) - 10} more of {mock.name}")
    if not lines:
        return None
    return "\n".join(
        [
            "calls from the server that no expectation consumed:",
            *lines,
            "consume each with `await expect(client.mock.<method>).to_match(...)`, or "
            "`when(client.mock.<method>).ignore()` what a test does not check",
        ]
    )
