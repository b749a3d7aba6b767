"""The session layer over an in-memory transport pair, run once for each side.

Every test runs twice: once with the session under test serving ``client_to_server`` (the
server's session) and once serving ``server_to_client`` (the client's). Its peer is either
another session (``pair``) or a bare transport the test reads and writes frames on (``raw``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import msgspec
import pytest

from grestws import (
    ApiError,
    ConnectionClosedError,
    ForbiddenError,
    FrameError,
    GrestwsError,
    InvalidStateError,
    Issue,
    NotFoundError,
    RequestTimeoutError,
    RouteNotFoundError,
    ServerError,
    SocketContract,
    UnavailableError,
    ValidationError,
    current_connection,
    current_message,
    notify,
    request,
)
from grestws.context import Connection
from grestws.contract import ContractHalf
from grestws.incidents import Incidents
from grestws.protocol import PONG, Frame, FrameType, decode_frame, decode_result, encode_ok
from grestws.session import Session
from grestws.testkit import MemoryTransport, memory_pair

T = TypeVar("T")

WAIT = 5.0
"""Upper bound for anything a test awaits; reached only when something is broken."""

Side = Literal["server", "client"]
Kind = Literal["declared", "implicit", "undeclared", "plain", "bad_data"]


class Item(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    count: int = 0


class Key(msgspec.Struct):
    key: str


class Failure(msgspec.Struct):
    kind: Kind


class Who(msgspec.Struct):
    connection_id: str
    side: str
    path: str
    id: int | None


class Declared(ApiError[Item], type="DECLARED", status_code=418):
    """The error that ``fail`` declares."""


class ServerSide(Protocol):
    @request
    async def echo(self, item: Item) -> Item: ...

    @request
    async def wait(self, key: Key) -> Key: ...

    @request(errors=[Declared])
    async def fail(self, failure: Failure) -> None: ...

    @request
    async def whoami(self) -> Who: ...

    @request
    async def missing(self) -> None: ...

    @notify
    async def note(self, item: Item) -> None: ...

    @notify
    async def note_fail(self, failure: Failure) -> None: ...


class ClientSide(Protocol):
    @request(name="clientEcho")
    async def echo(self, item: Item) -> Item: ...

    @request(name="clientWait")
    async def wait(self, key: Key) -> Key: ...

    @request(name="clientFail", errors=[Declared])
    async def fail(self, failure: Failure) -> None: ...

    @request(name="clientWhoami")
    async def whoami(self) -> Who: ...

    @request(name="clientMissing")
    async def missing(self) -> None: ...

    @notify(name="clientNote")
    async def note(self, item: Item) -> None: ...

    @notify(name="clientNoteFail")
    async def note_fail(self, failure: Failure) -> None: ...


CONTRACT = SocketContract("Test", client_to_server=ServerSide, server_to_client=ClientSide)

SECRET = "hunter2"


def _who() -> Who:
    conn = current_connection()
    message = current_message()
    return Who(conn.id, conn.side, message.path, message.id)


def _raise(kind: Kind) -> None:
    if kind == "declared":
        raise Declared("Not today", data=Item("x", 1))
    if kind == "implicit":
        raise ForbiddenError("No entry")
    if kind == "undeclared":
        raise NotFoundError(f"row {SECRET} is missing")
    if kind == "plain":
        raise RuntimeError(f"the password is {SECRET}")
    raise Declared("Bad data", data=object())  # type: ignore[call-overload]


class Handler:
    """Serves every method but ``missing``; tests steer ``wait`` with events."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.release: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.notes: asyncio.Queue[tuple[Item, Who]] = asyncio.Queue()

    async def echo(self, item: Item) -> Item:
        self.calls.append("echo")
        return item

    async def wait(self, key: Key) -> Key:
        self.calls.append("wait")
        self.entered[key.key].set()
        await self.release[key.key].wait()
        return key

    async def fail(self, failure: Failure) -> None:
        self.calls.append("fail")
        _raise(failure.kind)

    async def whoami(self) -> Who:
        self.calls.append("whoami")
        return _who()

    async def note(self, item: Item) -> None:
        self.calls.append("note")
        self.notes.put_nowait((item, _who()))

    async def note_fail(self, failure: Failure) -> None:
        self.calls.append("note_fail")
        _raise(failure.kind)


@dataclass
class End:
    """One session with its transport, handler and reported errors."""

    side: Side
    session: Session
    transport: MemoryTransport
    handler: Handler
    errors: asyncio.Queue[GrestwsError]
    task: asyncio.Task[None] | None = field(default=None)

    @classmethod
    def make(cls, transport: MemoryTransport, side: Side) -> End:
        incoming, outgoing = _halves(side)
        errors: asyncio.Queue[GrestwsError] = asyncio.Queue()
        session = Session(
            transport,
            Connection(f"{side}-connection", "/test", ("127.0.0.1", 1), side),
            incoming=incoming,
            outgoing=outgoing,
            incidents=Incidents(lambda i: errors.put_nowait(i.error) if i.error and not i.answered else None),
        )
        handler = Handler()
        session.bind(handler)
        return cls(side, session, transport, handler, errors)

    @property
    def proxy(self) -> Any:
        """The outgoing proxy, without a timeout."""
        return self.session.outgoing.proxy(self.session, None)

    def serves(self, name: str) -> bytes:
        """The wire path of an incoming method."""
        return self.session.incoming.methods[name].path.encode()

    def calls(self, name: str) -> bytes:
        """The wire path of an outgoing method."""
        return self.session.outgoing.methods[name].path.encode()


def _halves(side: Side) -> tuple[ContractHalf, ContractHalf]:
    if side == "server":
        return CONTRACT.client_to_server, CONTRACT.server_to_client
    return CONTRACT.server_to_client, CONTRACT.client_to_server


def _other(side: Side) -> Side:
    return "client" if side == "server" else "server"


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT)


async def next_frame(transport: MemoryTransport) -> Frame:
    return decode_frame(await within(transport.recv()))


async def round_trip(peer: MemoryTransport) -> list[bytes]:
    """Ping through the session; return the frames that came before the pong.

    The session handles frames in order, so once the pong is back every frame sent
    before the ping has been handled, and whatever it answered at once is returned.
    """
    await peer.send(b"p:::")
    before: list[bytes] = []
    while (raw := await within(peer.recv())) != PONG:
        before.append(raw)
    return before


@contextlib.asynccontextmanager
async def running(*ends: End) -> AsyncGenerator[None]:
    for end in ends:
        end.task = asyncio.create_task(end.session.run())
    try:
        yield
    finally:
        for end in ends:
            end.session.cancel_tasks()
            await end.transport.close()
        await asyncio.wait([end.task for end in ends if end.task is not None], timeout=WAIT)
        for end in ends:
            assert await end.session.wait_idle(WAIT)


@pytest.fixture(params=["server", "client"])
def side(request: pytest.FixtureRequest) -> Side:
    value: Side = request.param
    return value


@pytest.fixture
async def pair(side: Side) -> AsyncIterator[tuple[End, End]]:
    """The session under test and a peer session, both running."""
    a, b = memory_pair()
    local, remote = End.make(a, side), End.make(b, _other(side))
    async with running(local, remote):
        yield local, remote


@pytest.fixture
async def raw(side: Side) -> AsyncIterator[tuple[End, MemoryTransport]]:
    """The session under test, running, and the bare transport of its peer."""
    a, b = memory_pair()
    local = End.make(a, side)
    async with running(local):
        yield local, b


def _ok(path: bytes, request_id: int, data: bytes | None) -> bytes:
    return b"s:%b:%d:%b" % (path, request_id, encode_ok(data))


class TestCalls:
    async def test_request_and_response(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        assert await within(local.proxy.echo(Item("a", 1))) == Item("a", 1)
        assert remote.handler.calls == ["echo"]
        assert local.handler.calls == []

    async def test_both_directions_at_once(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        mine, theirs = await within(
            asyncio.gather(local.proxy.echo(Item("mine")), remote.proxy.echo(Item("theirs")))
        )
        assert (mine, theirs) == (Item("mine"), Item("theirs"))

    async def test_request_frame_on_the_wire(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        call = asyncio.create_task(local.proxy.echo(Item("a", 2)))
        frame = await next_frame(peer)
        assert frame == Frame(FrameType.REQ, local.calls("echo").decode(), 1, b'{"name":"a","count":2}')
        await peer.send(_ok(local.calls("echo"), 1, b'{"name":"b"}'))
        assert await within(call) == Item("b", 0)

    async def test_request_without_input_or_result(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        call = asyncio.create_task(local.proxy.missing())
        frame = await next_frame(peer)
        assert frame == Frame(FrameType.REQ, local.calls("missing").decode(), 1, b"")
        await peer.send(_ok(local.calls("missing"), 1, None))
        assert await within(call) is None

    async def test_responses_out_of_order_are_matched_by_id(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        first = asyncio.create_task(local.proxy.wait(Key("first")))
        second = asyncio.create_task(local.proxy.wait(Key("second")))
        await within(remote.handler.entered["first"].wait())
        await within(remote.handler.entered["second"].wait())
        assert local.session.pending_count == 2
        assert remote.session.in_flight == 2

        remote.handler.release["second"].set()
        assert await within(second) == Key("second")
        assert not first.done()
        assert local.session.pending_count == 1

        remote.handler.release["first"].set()
        assert await within(first) == Key("first")
        assert local.session.pending_count == 0

    async def test_ids_count_from_one_and_answers_match_by_id(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        path = local.calls("echo")
        calls = [asyncio.create_task(local.proxy.echo(Item(str(n)))) for n in range(1, 4)]
        frames = [await next_frame(peer) for _ in calls]
        assert [frame.id for frame in frames] == [1, 2, 3]
        assert [frame.data for frame in frames] == [msgspec.json.encode(Item(str(n))) for n in range(1, 4)]

        for request_id in (3, 1, 2):
            await peer.send(_ok(path, request_id, b'{"name":"answer %d"}' % request_id))
        assert await within(asyncio.gather(*calls)) == [Item("answer 1"), Item("answer 2"), Item("answer 3")]

    async def test_incoming_ids_are_independent_of_outgoing_ones(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        local, peer = raw
        mine = asyncio.create_task(local.proxy.echo(Item("mine")))
        assert (await next_frame(peer)).id == 1

        await peer.send(b'r:%b:1:{"name":"theirs"}' % local.serves("echo"))
        answer = await next_frame(peer)
        assert (answer.type, answer.path, answer.id) == (FrameType.RES, local.serves("echo").decode(), 1)
        assert msgspec.json.decode(answer.data) == {
            "success": True,
            "type": "OK",
            "data": {"name": "theirs", "count": 0},
        }
        assert not mine.done()

        await peer.send(_ok(local.calls("echo"), 1, b'{"name":"mine back"}'))
        assert await within(mine) == Item("mine back")

    async def test_notify(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        assert await within(local.proxy.note(Item("n", 3))) is None
        item, who = await within(remote.handler.notes.get())
        assert item == Item("n", 3)
        assert who == Who(remote.session.connection.id, remote.side, remote.serves("note").decode(), None)

    async def test_notify_frame_on_the_wire(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await local.proxy.note(Item("n"))
        assert await within(peer.recv()) == b'm:%b::{"name":"n","count":0}' % local.calls("note")
        assert local.session.pending_count == 0

    async def test_incoming_notify_gets_no_answer(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.send(b'm:%b::{"name":"n"}' % local.serves("note"))
        assert await round_trip(peer) == []
        item, _ = await within(local.handler.notes.get())
        assert item == Item("n")

    async def test_handlers_run_concurrently(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        blocked = asyncio.create_task(local.proxy.wait(Key("blocked")))
        await within(remote.handler.entered["blocked"].wait())
        assert await within(local.proxy.echo(Item("meanwhile"))) == Item("meanwhile")
        assert not blocked.done()
        remote.handler.release["blocked"].set()
        assert await within(blocked) == Key("blocked")


class TestContext:
    async def test_current_connection_and_message_in_a_request(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        path = remote.serves("whoami").decode()
        assert await within(local.proxy.whoami()) == Who(remote.session.connection.id, remote.side, path, 1)
        assert await within(local.proxy.whoami()) == Who(remote.session.connection.id, remote.side, path, 2)

    async def test_each_side_sees_its_own_connection(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        theirs = await within(local.proxy.whoami())
        mine = await within(remote.proxy.whoami())
        assert (theirs.connection_id, theirs.side) == (remote.session.connection.id, remote.side)
        assert (mine.connection_id, mine.side) == (local.session.connection.id, local.side)

    async def test_current_message_of_a_raw_request(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.send(b"r:%b:42:" % local.serves("whoami"))
        answer = await next_frame(peer)
        assert msgspec.json.decode(answer.data)["data"] == {
            "connection_id": local.session.connection.id,
            "side": local.side,
            "path": local.serves("whoami").decode(),
            "id": 42,
        }

    def test_outside_a_handler(self) -> None:
        with pytest.raises(InvalidStateError, match="only set inside a grestws handler"):
            current_connection()
        with pytest.raises(InvalidStateError, match="only set inside a grestws handler"):
            current_message()


class TestMessageFrames:
    """A message goes to its handler straight from the frame's head (``m:<path>::``);
    every frame must come out as decoding it would."""

    @pytest.mark.parametrize("kind", [bytes, bytearray])
    async def test_data_may_hold_the_separators(
        self, raw: tuple[End, MemoryTransport], kind: type[bytes] | type[bytearray]
    ) -> None:
        local, peer = raw
        local.session.receive(kind(b'm:%b::{"name":"a::b:c","count":2}' % local.serves("note")))
        item, who = await within(local.handler.notes.get())
        assert item == Item("a::b:c", 2)
        assert (who.path, who.id) == (local.serves("note").decode(), None)
        assert await round_trip(peer) == []

    async def test_a_message_to_a_request_runs_it_unanswered(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.send(b'm:%b::{"name":"x"}' % local.serves("echo"))
        assert await round_trip(peer) == []
        assert local.handler.calls == ["echo"]

    @pytest.mark.parametrize(
        "frame",
        [b"m:%b", b"m:%b:", b"m:%b:::", b"m:%b :: {}", b"m: %b::{}", b"n:%b::{}", b"m:%b:7:{}"],
        ids=["no-fields", "two-fields", "empty-data", "spaced", "spaced-path", "unknown-type", "an-id"],
    )
    async def test_a_head_that_is_no_key_is_decoded(
        self, raw: tuple[End, MemoryTransport], frame: bytes
    ) -> None:
        local, peer = raw
        local.session.receive(frame % local.serves("note"))
        assert await within(local.errors.get()) is not None
        assert await round_trip(peer) == []
        assert local.handler.calls == []

    async def test_a_handler_bound_later_is_reached(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        spec = local.session.incoming.methods["note_fail"]
        seen: list[Failure] = []

        async def note_fail(failure: Failure) -> None:
            seen.append(failure)

        local.session.bind_one(spec, note_fail)
        await peer.send(b'm:%b::{"kind":"plain"}' % spec.path.encode())
        assert await round_trip(peer) == []
        assert seen == [Failure("plain")]
        assert local.errors.empty()

    async def test_a_handler_bound_again_replaces_the_one_served_before(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        """Routes are made on a method's first call and kept; binding another function
        to the method afterwards is what the next call reaches, by either way in."""
        local, peer = raw
        spec = local.session.incoming.methods["note_fail"]
        seen: list[tuple[str, str]] = []

        def recording(name: str) -> Callable[[Failure], Awaitable[None]]:
            async def note_fail(failure: Failure) -> None:
                seen.append((name, failure.kind))

            return note_fail

        small = b'm:%b::{"kind":"plain"}' % spec.path.encode()
        large = b'm:%b::{"kind":"plain","pad":"%b"}' % (spec.path.encode(), b"x" * 70_000)
        local.session.bind_one(spec, recording("first"))
        for frame in (small, small, large):
            await peer.send(frame)
        assert await round_trip(peer) == []
        local.session.bind_one(spec, recording("second"))
        for frame in (small, large):
            await peer.send(frame)
        assert await round_trip(peer) == []
        assert [name for name, _ in seen] == ["first"] * 3 + ["second"] * 2
        assert local.errors.empty()

    async def test_a_plain_function_is_called_in_the_message_context(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        """A handler that is no ``async def`` runs code when called: it is called in the
        message's context, as the coroutine of an ``async def`` handler runs."""
        local, peer = raw
        spec = local.session.incoming.methods["note_fail"]
        seen: list[str] = []

        def note_fail(failure: Failure) -> Awaitable[None]:
            seen.append(current_message().path)
            return asyncio.sleep(0)

        local.session.bind_one(spec, note_fail)
        await peer.send(b'm:%b::{"kind":"plain"}' % spec.path.encode())
        assert await round_trip(peer) == []
        assert seen == [spec.path]
        assert local.errors.empty()


class TestUnknownPath:
    async def test_request_gets_route_not_found(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.send(b"r:Test.nope:7:{}")
        answer = await next_frame(peer)
        assert (answer.type, answer.path, answer.id) == (FrameType.RES, "Test.nope", 7)
        result = decode_result(answer.data)
        assert (result.success, result.type, result.status_code) == (False, "ROUTE_NOT_FOUND", 404)
        assert result.context is not None
        assert result.context.display_message == "Route not found: Test.nope"
        assert isinstance(result.context.timestamp, int)
        assert await round_trip(peer) == []
        assert local.errors.empty()

    async def test_a_method_of_the_other_half_is_not_served(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.send(b'r:%b:1:{"name":"x"}' % local.calls("echo"))
        answer = await next_frame(peer)
        assert decode_result(answer.data).type == "ROUTE_NOT_FOUND"
        assert local.handler.calls == []

    async def test_declared_but_unimplemented_method(self, pair: tuple[End, End]) -> None:
        local, _ = pair
        with pytest.raises(RouteNotFoundError) as caught:
            await within(local.proxy.missing())
        assert caught.value.message == f"Route not found: {local.calls('missing').decode()}"

    async def test_message_is_dropped_and_reported(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.send(b"m:Test.nope::{}")
        error = await within(local.errors.get())
        assert isinstance(error, RouteNotFoundError)
        assert error.message == "Route not found: Test.nope"
        assert await round_trip(peer) == []


VALIDATION_CASES = [
    pytest.param(b'{"name":5}', Issue("name", "invalid_type", "Expected `str`, got `int`"), id="wrong-type"),
    pytest.param(b"{}", Issue("name", "missing_field", "Object missing required field `name`"), id="missing"),
    pytest.param(
        b'{"name":"a","extra":1}',
        Issue("extra", "unknown_field", "Object contains unknown field `extra`"),
        id="unknown-field",
    ),
    pytest.param(b"[]", Issue("", "invalid_type", "Expected `object`, got `array`"), id="not-an-object"),
    pytest.param(b'{"name":', Issue("", "invalid_json", "Input data was truncated"), id="truncated-json"),
    pytest.param(b"", Issue("", "invalid_json", "Input data was truncated"), id="no-data"),
]


class TestValidation:
    @pytest.mark.parametrize(("data", "issue"), VALIDATION_CASES)
    async def test_bad_request_gets_validation_error(
        self, raw: tuple[End, MemoryTransport], data: bytes, issue: Issue
    ) -> None:
        local, peer = raw
        await peer.send(b"r:%b:1:%b" % (local.serves("echo"), data))
        answer = await next_frame(peer)
        assert (answer.type, answer.id) == (FrameType.RES, 1)
        result = decode_result(answer.data)
        assert (result.success, result.type, result.status_code) == (False, "VALIDATION_ERROR", 422)
        assert msgspec.json.decode(result.data, type=list[Issue]) == [issue]
        assert result.context is not None
        assert result.context.display_message == "Invalid input"
        assert local.handler.calls == []

    async def test_validation_error_whatever_the_method_declares(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        local, peer = raw
        await peer.send(b'r:%b:1:{"kind":"nope"}' % local.serves("fail"))
        result = decode_result((await next_frame(peer)).data)
        assert result.type == "VALIDATION_ERROR"
        assert local.handler.calls == []

    async def test_caller_gets_typed_issues(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        with pytest.raises(ValidationError) as caught:
            await within(local.proxy.echo({"name": 5}))
        assert caught.value.data == [Issue("name", "invalid_type", "Expected `str`, got `int`")]
        assert caught.value.message == "Invalid input"
        assert remote.handler.calls == []

    @pytest.mark.parametrize(("data", "issue"), VALIDATION_CASES)
    async def test_bad_message_is_dropped_and_reported(
        self, raw: tuple[End, MemoryTransport], data: bytes, issue: Issue
    ) -> None:
        local, peer = raw
        await peer.send(b"m:%b::%b" % (local.serves("note"), data))
        error = await within(local.errors.get())
        assert isinstance(error, ValidationError)
        assert error.data == [issue]
        assert await round_trip(peer) == []
        assert local.handler.calls == []


@pytest.mark.logs_errors
class TestHandlerErrors:
    async def test_declared_error_is_raised_typed(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        with pytest.raises(Declared) as caught:
            await within(local.proxy.fail(Failure("declared")))
        error = caught.value
        assert (error.message, error.data, error.ref) == ("Not today", Item("x", 1), None)
        assert isinstance(error.timestamp, int)
        assert remote.errors.empty()

    async def test_implicitly_declared_error_is_sent(self, pair: tuple[End, End]) -> None:
        local, _ = pair
        with pytest.raises(ForbiddenError, match="No entry"):
            await within(local.proxy.fail(Failure("implicit")))

    async def test_declared_error_on_the_wire(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.send(b'r:%b:5:{"kind":"declared"}' % local.serves("fail"))
        answer = await next_frame(peer)
        envelope = msgspec.json.decode(answer.data)
        assert envelope["context"].pop("timestamp") > 0
        assert envelope == {
            "success": False,
            "type": "DECLARED",
            "statusCode": 418,
            "data": {"name": "x", "count": 1},
            "context": {"displayMessage": "Not today"},
        }

    @pytest.mark.parametrize(
        ("kind", "what"), [("undeclared", "undeclared error"), ("plain", "handler failed")]
    )
    async def test_failure_becomes_server_error_with_a_ref(
        self, pair: tuple[End, End], caplog: pytest.LogCaptureFixture, kind: Kind, what: str
    ) -> None:
        local, remote = pair
        with caplog.at_level(logging.ERROR, logger="grestws"), pytest.raises(ServerError) as caught:
            await within(local.proxy.fail(Failure(kind)))
        error = caught.value
        assert type(error) is ServerError
        assert error.message is None
        assert error.ref is not None
        assert re.fullmatch(r"[0-9a-f]{16}", error.ref)

        reported = await within(remote.errors.get())
        assert isinstance(reported, ServerError)
        assert (reported.message, reported.ref) == (f"{remote.serves('fail').decode()}: {what}", error.ref)
        (record,) = [record for record in caplog.records if error.ref in record.getMessage()]
        assert record.exc_info is not None
        assert SECRET in str(record.exc_info[1])

    @pytest.mark.parametrize("kind", ["undeclared", "plain"])
    async def test_internals_never_reach_the_wire(self, raw: tuple[End, MemoryTransport], kind: Kind) -> None:
        local, peer = raw
        await peer.send(b'r:%b:1:{"kind":"%b"}' % (local.serves("fail"), kind.encode()))
        answer = await next_frame(peer)
        assert SECRET.encode() not in answer.data
        for leak in (b"Traceback", b"RuntimeError", b"NotFoundError", b"missing", b"password"):
            assert leak not in answer.data
        result = decode_result(answer.data)
        assert (result.success, result.type, result.status_code, bytes(result.data)) == (
            False,
            "SERVER_ERROR",
            500,
            b"",
        )
        assert result.context is not None
        assert result.context.display_message is None
        assert result.context.ref is not None

    async def test_error_data_that_cannot_be_encoded_becomes_server_error(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        local, peer = raw
        await peer.send(b'r:%b:1:{"kind":"bad_data"}' % local.serves("fail"))
        answers = await round_trip(peer)
        assert await local.session.wait_idle(WAIT)
        answers += await round_trip(peer)
        assert [decode_frame(answer).id for answer in answers] == [1]
        assert decode_result(decode_frame(answers[0]).data).type == "SERVER_ERROR"

    @pytest.mark.parametrize(
        ("kind", "what"), [("undeclared", "undeclared error"), ("plain", "handler failed"), ("declared", "")]
    )
    async def test_failing_message_handler_is_reported(
        self, raw: tuple[End, MemoryTransport], kind: Kind, what: str
    ) -> None:
        local, peer = raw
        await peer.send(b'm:%b::{"kind":"%b"}' % (local.serves("note_fail"), kind.encode()))
        error = await within(local.errors.get())
        assert isinstance(error, ServerError)
        assert error.message == f"{local.serves('note_fail').decode()}: {what or 'undeclared error'}"
        assert error.ref is not None
        assert await round_trip(peer) == []

    async def test_message_handler_failing_after_a_wait_is_reported(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        local, peer = raw
        entered, release = asyncio.Event(), asyncio.Event()

        async def fails_later(failure: Failure) -> None:
            entered.set()
            await release.wait()
            _raise(failure.kind)

        local.session.bind_one(local.session.incoming.methods["note_fail"], fails_later)
        await peer.send(b'm:%b::{"kind":"plain"}' % local.serves("note_fail"))
        await within(entered.wait())
        assert local.session.in_flight == 1
        release.set()
        error = await within(local.errors.get())
        assert isinstance(error, ServerError)
        assert error.message == f"{local.serves('note_fail').decode()}: handler failed"
        assert await local.session.wait_idle(WAIT)
        assert await round_trip(peer) == []

    async def test_message_handler_cancelled_with_the_session_is_not_reported(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        local, peer = raw
        entered = asyncio.Event()

        async def waits(failure: Failure) -> None:
            entered.set()
            await asyncio.Event().wait()

        local.session.bind_one(local.session.incoming.methods["note_fail"], waits)
        await peer.send(b'm:%b::{"kind":"plain"}' % local.serves("note_fail"))
        await within(entered.wait())
        (task,) = local.session.cancel_tasks()
        await within(asyncio.wait((task,)))
        assert task.cancelled()
        assert await local.session.wait_idle(WAIT)
        assert await round_trip(peer) == []
        assert local.errors.empty()

    async def test_message_handler_raising_an_implicit_error_is_reported(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        local, peer = raw
        await peer.send(b'm:%b::{"kind":"implicit"}' % local.serves("note_fail"))
        assert await round_trip(peer) == []
        assert await local.session.wait_idle(WAIT)
        assert local.handler.calls == ["note_fail"]
        assert not local.errors.empty()


class TestResponses:
    """What the calling side makes of the peer's ``s`` frames."""

    @pytest.mark.parametrize(
        ("envelope", "message", "issue"),
        [
            pytest.param(
                b'{"success":true,"type":"OK","data":{"name":1}}',
                "does not fit the method's success type",
                Issue("name", "invalid_type", "Expected `str`, got `int`"),
                id="wrong-type",
            ),
            pytest.param(
                b'{"success":true,"type":"OK"}',
                "does not fit the method's success type",
                Issue("", "invalid_type", "Expected `object`, got `null`"),
                id="no-data",
            ),
            pytest.param(
                b"}",
                "is not a result envelope",
                Issue("", "invalid_json", "JSON is malformed: invalid character (byte 0)"),
                id="not-json",
            ),
            pytest.param(
                b'{"type":"OK"}',
                "is not a result envelope",
                Issue("success", "missing_field", "Object missing required field `success`"),
                id="no-success",
            ),
        ],
    )
    async def test_bad_answer_raises_validation_error(
        self, raw: tuple[End, MemoryTransport], envelope: bytes, message: str, issue: Issue
    ) -> None:
        local, peer = raw
        call = asyncio.create_task(local.proxy.echo(Item("a")))
        await next_frame(peer)
        await peer.send(b"s:%b:1:%b" % (local.calls("echo"), envelope))
        with pytest.raises(ValidationError, match=re.escape(message)) as caught:
            await within(call)
        assert caught.value.data == [issue]

    @pytest.mark.parametrize(
        ("envelope", "error_type", "status_code", "message", "data"),
        [
            pytest.param(
                b'{"success":false,"type":"NOT_FOUND"}',
                NotFoundError,
                404,
                None,
                None,
                id="no-status-no-context",
            ),
            pytest.param(
                b'{"success":false,"type":"DECLARED","statusCode":418,"data":{"seats":1}}',
                Declared,
                418,
                None,
                None,
                id="declared-data-does-not-fit",
            ),
            pytest.param(
                b'{"success":false,"type":"TEAPOT","statusCode":418,"data":{"a":1},'
                b'"context":{"displayMessage":"short and stout"}}',
                None,
                418,
                "short and stout",
                {"a": 1},
                id="unknown-type",
            ),
            pytest.param(
                b'{"success":false,"type":"not a type","statusCode":400}',
                ServerError,
                500,
                None,
                None,
                id="invalid-type-name",
            ),
        ],
    )
    async def test_error_answers(
        self,
        raw: tuple[End, MemoryTransport],
        envelope: bytes,
        error_type: type[ApiError[Any]] | None,
        status_code: int,
        message: str | None,
        data: Any,
    ) -> None:
        local, peer = raw
        call = asyncio.create_task(local.proxy.fail(Failure("declared")))
        await next_frame(peer)
        await peer.send(b"s:%b:1:%b" % (local.calls("fail"), envelope))
        with pytest.raises(ApiError) as caught:
            await within(call)
        error = caught.value
        if error_type is None:
            assert (type(error).type, type(error).__name__) == ("TEAPOT", "TeapotError")
        else:
            assert type(error) is error_type
        assert (error.status_code, error.message, error.data) == (status_code, message, data)

    async def test_unknown_id_is_ignored(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        path = local.calls("echo")
        await peer.send(_ok(path, 1, b'{"name":"nobody asked"}'))
        assert await round_trip(peer) == []
        call = asyncio.create_task(local.proxy.echo(Item("a")))
        assert (await next_frame(peer)).id == 1
        for request_id in (2, 99, 9007199254740991):
            await peer.send(_ok(path, request_id, b'{"name":"unknown"}'))
        assert await round_trip(peer) == []
        assert not call.done()
        assert local.session.pending_count == 1
        assert local.errors.empty()

        await peer.send(_ok(path, 1, b'{"name":"right"}'))
        assert await within(call) == Item("right")

    async def test_second_answer_to_one_id_is_ignored(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        path = local.calls("echo")
        call = asyncio.create_task(local.proxy.echo(Item("a")))
        await next_frame(peer)
        await peer.send(_ok(path, 1, b'{"name":"first"}'))
        await peer.send(_ok(path, 1, b'{"name":"second"}'))
        assert await within(call) == Item("first")
        assert await round_trip(peer) == []
        assert local.errors.empty()


class TestTimeouts:
    async def test_timeout_then_late_answer_ignored(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        path = local.calls("echo")
        hasty = local.session.outgoing.proxy(local.session, 0.01)
        with pytest.raises(RequestTimeoutError) as caught:
            await within(hasty.echo(Item("late")))
        assert (caught.value.path, caught.value.timeout) == (path.decode(), 0.01)
        assert isinstance(caught.value, TimeoutError)
        assert local.session.pending_count == 0

        sent = await next_frame(peer)
        await peer.send(_ok(path, sent.id or 0, b'{"name":"too late"}'))
        assert await round_trip(peer) == []
        assert local.errors.empty()

        call = asyncio.create_task(local.proxy.echo(Item("next")))
        again = await next_frame(peer)
        assert again.id == (sent.id or 0) + 1
        await peer.send(_ok(path, again.id or 0, b'{"name":"in time"}'))
        assert await within(call) == Item("in time")

    async def test_a_shorter_timeout_expires_first_and_the_longer_waits(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        local, peer = raw
        path = local.calls("echo")
        patient = asyncio.create_task(local.session.outgoing.proxy(local.session, WAIT).echo(Item("a")))
        first = await next_frame(peer)
        hasty = local.session.outgoing.proxy(local.session, 0.01)
        with pytest.raises(RequestTimeoutError):
            await within(hasty.echo(Item("b")))
        await next_frame(peer)
        assert local.session.pending_count == 1
        await peer.send(_ok(path, first.id or 0, b'{"name":"waited"}'))
        assert await within(patient) == Item("waited")
        assert local.session.pending_count == 0

    async def test_many_requests_share_the_timer(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        hasty = local.session.outgoing.proxy(local.session, 0.01)
        calls = [asyncio.create_task(hasty.echo(Item(str(n)))) for n in range(5)]
        results = await within(asyncio.gather(*calls, return_exceptions=True))
        assert all(isinstance(result, RequestTimeoutError) for result in results)
        assert local.session.pending_count == 0
        assert len([await next_frame(peer) for _ in range(5)]) == 5

    async def test_answer_in_time_is_not_a_timeout(self, pair: tuple[End, End]) -> None:
        local, _ = pair
        patient = local.session.outgoing.proxy(local.session, WAIT)
        assert await within(patient.echo(Item("quick"))) == Item("quick")


class TestClose:
    async def test_close_fails_every_pending_request_at_once(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        calls = [asyncio.create_task(local.proxy.echo(Item(str(n)))) for n in range(3)]
        for _ in calls:
            await next_frame(peer)
        assert local.session.pending_count == 3

        await peer.close(4001, "going away")
        results = await within(asyncio.gather(*calls, return_exceptions=True))
        closed = [result for result in results if isinstance(result, ConnectionClosedError)]
        assert len(closed) == len(calls)
        assert {(error.code, error.reason) for error in closed} == {(4001, "going away")}
        assert local.task is not None
        await within(local.task)
        assert local.session.closed
        assert (local.session.close_code, local.session.close_reason) == (4001, "going away")
        assert local.session.pending_count == 0

    async def test_calls_after_close_fail_at_once(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.close(1000, "bye")
        assert local.task is not None
        await within(local.task)
        with pytest.raises(ConnectionClosedError) as caught:
            await local.proxy.echo(Item("after"))
        assert (caught.value.code, caught.value.reason) == (1000, "bye")
        with pytest.raises(ConnectionClosedError):
            await local.proxy.note(Item("after"))
        assert local.session.pending_count == 0

    async def test_remote_session_sees_the_close(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        blocked = asyncio.create_task(remote.proxy.wait(Key("k")))
        await within(local.handler.entered["k"].wait())
        await local.transport.close(1001, "leaving")
        with pytest.raises(ConnectionClosedError) as caught:
            await within(blocked)
        assert (caught.value.code, caught.value.reason) == (1001, "leaving")
        local.handler.release["k"].set()
        assert await within(local.session.wait_idle(WAIT))
        assert local.errors.empty()

    async def test_stopping_run_fails_pending_requests(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        call = asyncio.create_task(local.proxy.echo(Item("a")))
        await next_frame(peer)
        assert local.task is not None
        local.task.cancel()
        with pytest.raises(ConnectionClosedError) as caught:
            await within(call)
        assert (caught.value.code, caught.value.reason) == (None, "session stopped")
        assert local.session.closed

    async def test_connection_lost_counts_once(self, raw: tuple[End, MemoryTransport]) -> None:
        local, _ = raw
        local.session.connection_lost(1000, "first")
        local.session.connection_lost(1011, "second")
        assert (local.session.close_code, local.session.close_reason) == (1000, "first")

    async def test_cancelling_a_request_forgets_it(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        path = local.calls("echo")
        call = asyncio.create_task(local.proxy.echo(Item("a")))
        sent = await next_frame(peer)
        assert local.session.pending_count == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert local.session.pending_count == 0

        await peer.send(_ok(path, sent.id or 0, b'{"name":"late"}'))
        assert await round_trip(peer) == []
        assert local.errors.empty()
        assert await local.session.wait_pending(0)


class TestWaiting:
    async def test_wait_idle(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        assert await local.session.wait_idle(0) is True
        call = asyncio.create_task(remote.proxy.wait(Key("k")))
        await within(local.handler.entered["k"].wait())
        assert local.session.in_flight == 1
        assert await local.session.wait_idle(0) is False

        idle = asyncio.create_task(local.session.wait_idle(WAIT))
        local.handler.release["k"].set()
        assert await within(idle) is True
        assert local.session.in_flight == 0
        assert await within(call) == Key("k")

    async def test_wait_pending(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        assert await local.session.wait_pending(0) is True
        call = asyncio.create_task(local.proxy.wait(Key("k")))
        await within(remote.handler.entered["k"].wait())
        assert local.session.pending_count == 1
        assert await local.session.wait_pending(0) is False

        pending = asyncio.create_task(local.session.wait_pending(WAIT))
        remote.handler.release["k"].set()
        assert await within(pending) is True
        assert local.session.pending_count == 0
        assert await within(call) == Key("k")

    async def test_cancel_tasks_stops_handlers_and_answers_server_error(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        call = asyncio.create_task(local.proxy.wait(Key("k")))
        await within(remote.handler.entered["k"].wait())
        (task,) = remote.session.cancel_tasks()
        await within(asyncio.wait((task,)))
        assert await within(remote.session.wait_idle(WAIT))
        with pytest.raises(ServerError) as caught:
            await within(call)
        assert caught.value.message == "Cancelled: the server is shutting down"
        assert await within(local.proxy.echo(Item("after"))) == Item("after")


class TestDraining:
    async def test_requests_while_draining_get_unavailable(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        remote.session.draining = True
        with pytest.raises(UnavailableError) as caught:
            await within(local.proxy.echo(Item("x")))
        assert caught.value.message == "Server is shutting down"
        assert remote.handler.calls == []

    async def test_calls_in_flight_finish_while_draining(self, pair: tuple[End, End]) -> None:
        local, remote = pair
        call = asyncio.create_task(local.proxy.wait(Key("k")))
        await within(remote.handler.entered["k"].wait())
        remote.session.draining = True
        remote.handler.release["k"].set()
        assert await within(call) == Key("k")


class TestLiveness:
    async def test_ping_is_answered_with_pong(self, raw: tuple[End, MemoryTransport]) -> None:
        local, peer = raw
        await peer.send(b"p:::")
        assert await within(peer.recv()) == b"o:::"
        assert local.handler.calls == []
        assert local.errors.empty()

    async def test_pong_and_handshake_frames_mean_nothing_after_the_handshake(
        self, raw: tuple[End, MemoryTransport]
    ) -> None:
        local, peer = raw
        for frame in (b"o:::", b"k:::null", b"h:::{}", b'x:::{"success":false,"type":"FORBIDDEN"}'):
            await peer.send(frame)
        assert await round_trip(peer) == []
        assert local.handler.calls == []
        assert local.errors.empty()

    @pytest.mark.parametrize("frame", [b"garbage", b"r:Test.echo::{}", b"m:Test.note:1:{}", b""])
    async def test_malformed_frame_is_dropped_and_reported(
        self, raw: tuple[End, MemoryTransport], frame: bytes
    ) -> None:
        local, peer = raw
        await peer.send(frame)
        assert isinstance(await within(local.errors.get()), FrameError)
        assert await round_trip(peer) == []
        assert local.handler.calls == []


class TestMemoryPair:
    """The transport these tests run over."""

    async def test_deliver_to_hands_queued_frames_first_then_pushes(self) -> None:
        a, b = memory_pair()
        await a.send(b"queued")
        got: list[bytes | bytearray] = []
        b.deliver_to(got.append)
        assert got == [b"queued"]
        await a.send(b"pushed")
        await a.send(b"in order")
        await a.close(4001, "bye")
        assert await within(b.wait_closed()) == (4001, "bye")
        assert got == [b"queued", b"pushed", b"in order"]

    async def test_wait_closed_from_either_end(self) -> None:
        a, b = memory_pair()
        await b.close()
        assert await within(a.wait_closed()) == (1000, "")
        assert await within(b.wait_closed()) == (1000, "")

    async def test_frames_arrive_in_order_both_ways(self) -> None:
        a, b = memory_pair()
        await a.send(b"one")
        await a.send(b"two")
        await b.send(b"back")
        assert [await b.recv(), await b.recv(), await a.recv()] == [b"one", b"two", b"back"]

    async def test_close_reaches_the_other_end_after_the_frames_sent_before_it(self) -> None:
        a, b = memory_pair()
        await a.send(b"last words")
        await a.close(4001, "Handshake failed")
        assert await b.recv() == b"last words"
        for end in (a, b):
            with pytest.raises(ConnectionClosedError) as caught:
                await end.recv()
            assert (caught.value.code, caught.value.reason) == (4001, "Handshake failed")
            assert end.closed
            assert (end.close_code, end.close_reason) == (4001, "Handshake failed")

    async def test_close_wakes_a_waiting_recv(self) -> None:
        a, b = memory_pair()
        waiting = asyncio.create_task(b.recv())
        await a.close()
        with pytest.raises(ConnectionClosedError) as caught:
            await within(waiting)
        assert (caught.value.code, caught.value.reason) == (1000, "")

    async def test_close_is_idempotent(self) -> None:
        a, b = memory_pair()
        await b.close(1001, "first")
        await a.close(1000, "second")
        await b.close(1002, "third")
        for end in (a, b):
            with pytest.raises(ConnectionClosedError) as caught:
                await end.recv()
            assert (caught.value.code, caught.value.reason) == (1001, "first")
            with pytest.raises(ConnectionClosedError):
                await end.recv()

    async def test_send_after_close_raises(self) -> None:
        a, b = memory_pair()
        await a.close(1000, "done")
        for end in (a, b):
            with pytest.raises(ConnectionClosedError) as caught:
                await end.send(b"p:::")
            assert (caught.value.code, caught.value.reason) == (1000, "done")

    async def test_cancelled_recv_loses_no_frame(self) -> None:
        a, b = memory_pair()
        waiting = asyncio.create_task(b.recv())
        await asyncio.wait([waiting], timeout=0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await a.send(b"kept")
        assert await within(b.recv()) == b"kept"

    def test_repr(self) -> None:
        a, b = memory_pair()
        assert repr(a) == "<MemoryTransport a open>"
        assert repr(b) == "<MemoryTransport b open>"
