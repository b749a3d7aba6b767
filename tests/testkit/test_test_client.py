"""The testkit's test client: call_on in-process and at a URL, expect() on calls and on
the server's calls, when() for the client's answers, unconsumed calls and the wire log.

``BoardApi`` is a small contract of this module: notes posted to a room are pushed to the
room's other members, a fire-and-forget call is answered with a push, and the server asks
the client a question. The chat example covers several users with bearer tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, Protocol

import msgspec
import pytest

import grestws
from examples.chat import server as chat_server
from examples.chat.contract import (
    ChatApi,
    DeleteMessageRequest,
    MarkAsReadRequest,
    Message,
    SendMessageRequest,
)
from examples.chat.server import app as chat_app
from grestws.client import ClientState
from grestws.testkit import Call, TestClient, UnconsumedCallsError, call_on, expect, when
from grestws.testkit.wire import SHOWN, Direction
from tests.conftest import StartServer

# -- the contract ------------------------------------------------------------------------


class BoardQuery(msgspec.Struct):
    room: Annotated[str, msgspec.Meta(min_length=1)] = "main"


class NewNote(msgspec.Struct, rename="camel"):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    tags: list[Annotated[str, msgspec.Meta(min_length=1)]] = msgspec.field(default_factory=list)


class Note(msgspec.Struct, rename="camel"):
    note_id: int
    text: str
    author: str


class Quota(msgspec.Struct, rename="camel"):
    max_notes: int
    used: int


class BoardFull(grestws.ApiError[Quota], type="BOARD_FULL", status_code=400):
    """The room holds no more notes."""


class Reason(msgspec.Struct):
    why: str


class Declined(grestws.ApiError[Reason], type="DECLINED", status_code=409):
    """The client will not answer the question."""


class Who(msgspec.Struct, rename="camel"):
    user: str
    room: str
    locale: str


class BoardServer(Protocol):
    @grestws.request(errors=[BoardFull])
    async def post(self, note: NewNote) -> Note:
        """Keep ``note`` and push it to the room's other members as ``noted``."""
        ...

    @grestws.notify
    async def record(self, text: str) -> None:
        """Fire-and-forget; the server pushes ``noted`` back to the caller."""
        ...

    @grestws.request
    async def ticks(self, count: int) -> int:
        """Push ``tick`` to the caller ``count`` times, then answer ``count``."""
        ...

    @grestws.request
    async def ask(self, question: str) -> str:
        """Ask the caller ``confirm(question)``; its answer, or what went wrong."""
        ...

    @grestws.request
    async def who(self) -> Who:
        """What the server knows of this connection."""
        ...

    @grestws.request
    async def echo(self, text: str) -> str: ...


class BoardClient(Protocol):
    @grestws.notify
    async def noted(self, note: Note) -> None: ...

    @grestws.notify
    async def tick(self) -> None: ...

    @grestws.request(errors=[Declined])
    async def confirm(self, question: str) -> str: ...


Board = grestws.SocketContract(
    "BoardApi", client_to_server=BoardServer, server_to_client=BoardClient, rename="camel"
)
BoardApi = Board.at("/ws/board", query=BoardQuery)

USER = grestws.ContextKey[str]("user")
LOCALE = grestws.ContextKey[str]("locale")


class Headers(grestws.Middleware):
    """Reads the user and the locale from the handshake headers."""

    def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
        USER.set(handshake.headers.get("x-user", "anonymous"))
        LOCALE.set(handshake.headers.get("x-locale", "en"))


ServerBoardApi = BoardApi.use(Headers())


class BoardState:
    """What the handlers of one App share with the test."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.notes: list[Note] = []
        self.rooms: dict[str, set[grestws.ServerConnection[BoardClient]]] = {}
        self.closed: list[str] = []
        self.recorded = 0


class BoardHandler(BoardServer):
    def __init__(self, conn: grestws.ServerConnection[BoardClient], state: BoardState) -> None:
        self.conn = conn
        self.state = state
        self.user = USER.get()
        self.locale = LOCALE.get()
        self.room = BoardApi.query_of(conn).room
        self.members = state.rooms.setdefault(self.room, set())
        self.members.add(conn)
        conn.on_close(self._closed)

    def _closed(self, code: int | None, reason: str) -> None:
        self.members.discard(self.conn)
        self.state.closed.append(self.user)

    async def post(self, note: NewNote) -> Note:
        state = self.state
        if len(state.notes) >= state.capacity:
            raise BoardFull("The board is full", data=Quota(max_notes=state.capacity, used=len(state.notes)))
        kept = Note(note_id=len(state.notes) + 1, text=note.text, author=self.user)
        state.notes.append(kept)
        grestws.broadcast(self.members - {self.conn}, BoardClient.noted, kept)
        return kept

    async def record(self, text: str) -> None:
        self.state.recorded += 1
        await self.conn.outgoing.noted(Note(note_id=-self.state.recorded, text=text, author=self.user))

    async def ticks(self, count: int) -> int:
        for _ in range(count):
            await self.conn.outgoing.tick()
        return count

    async def ask(self, question: str) -> str:
        try:
            return await self.conn.outgoing.confirm(question)
        except Declined as exc:
            return f"declined: {exc.data.why}"
        except grestws.RouteNotFoundError:
            return "ROUTE_NOT_FOUND"

    async def who(self) -> Who:
        return Who(user=self.user, room=self.room, locale=self.locale)

    async def echo(self, text: str) -> str:
        return text


def board_app(capacity: int = 10, allowed_origins: list[str] | None = None) -> tuple[grestws.App, BoardState]:
    state = BoardState(capacity)
    app = grestws.App(allowed_origins=allowed_origins)
    app.add(ServerBoardApi, lambda conn: BoardHandler(conn, state))
    return app, state


class OtherServer(Protocol):
    @grestws.request
    async def hello(self) -> str: ...


class OtherClient(Protocol):
    pass


Other = grestws.SocketContract("OtherApi", client_to_server=OtherServer, server_to_client=OtherClient)


def board(
    target: grestws.App | str, user: str = "ann", **options: Any
) -> TestClient[BoardServer, BoardClient]:
    """A test client of BoardApi at ``target``, named and identified as ``user``."""
    return call_on(BoardApi, target, name=user, headers={"x-user": user}, **options)


# -- lifecycle ---------------------------------------------------------------------------


class TestLifecycle:
    async def test_async_with_connects_and_disconnects(self) -> None:
        app, state = board_app()
        client = board(app)
        assert client.state is ClientState.NEW
        async with client as same:
            assert same is client
            assert client.state is ClientState.OPEN
            note = await client.call.post(NewNote(text="hello"))
            assert note == Note(note_id=1, text="hello", author="ann")
        assert client.state is ClientState.CLOSED
        assert client.client.close_code == 1000
        assert state.closed == ["ann"]

    async def test_connect_and_disconnect_explicitly(self) -> None:
        app, state = board_app()
        client = board(app)
        with pytest.raises(grestws.InvalidStateError, match="connect"):
            _ = client.call
        with pytest.raises(grestws.InvalidStateError, match="connect"):
            _ = client.client
        assert await client.connect() is client
        assert client.state is ClientState.OPEN
        assert await client.call.echo("hi") == "hi"
        with pytest.raises(grestws.InvalidStateError, match="connected already"):
            await client.connect()
        await client.disconnect()
        assert client.state is ClientState.CLOSED
        assert state.closed == ["ann"]
        await client.disconnect()  # idempotent
        assert state.closed == ["ann"]

    async def test_disconnect_before_connecting_does_nothing(self) -> None:
        app, _ = board_app()
        client = board(app)
        await client.disconnect()
        assert client.state is ClientState.NEW

    async def test_reconnect_after_disconnect(self) -> None:
        app, state = board_app()
        client = board(app)
        await client.connect()
        assert await client.call.who() == Who(user="ann", room="main", locale="en")
        await client.disconnect()
        await client.connect(headers={"x-user": "bob"})
        assert client.state is ClientState.OPEN
        assert await client.call.who() == Who(user="bob", room="main", locale="en")
        await client.disconnect()
        assert state.closed == ["ann", "bob"]

    async def test_async_with_again_after_disconnect_reconnects(self) -> None:
        app, state = board_app()
        client = board(app)
        async with client:
            await client.call.echo("one")
        async with client:
            assert client.state is ClientState.OPEN
            assert await client.call.echo("two") == "two"
        assert state.closed == ["ann", "ann"]

    async def test_a_call_after_disconnect_fails(self) -> None:
        app, _ = board_app()
        client = board(app)
        async with client:
            pass
        with pytest.raises((grestws.InvalidStateError, grestws.ConnectionClosedError)):
            await client.call.echo("x")

    async def test_call_after_disconnect_raises_invalid_state(self) -> None:
        app, _ = board_app()
        client = board(app)
        async with client:
            pass
        with pytest.raises(grestws.InvalidStateError, match="connect"):
            _ = client.call

    async def test_the_server_closes_the_connection(self) -> None:
        app, state = board_app()
        async with board(app) as client:
            closed = asyncio.Event()
            client.client.on_close(lambda code, reason: closed.set())
            await client.call.echo("x")
            (conn,) = state.rooms["main"]
            await conn.close(4000, "go away")
            await closed.wait()
            assert client.state is ClientState.CLOSED
            assert client.client.close_code == 4000
            with pytest.raises(grestws.ConnectionClosedError):
                await client.call.echo("y")
        assert list(client.log)[-1] == (Direction.CLOSED, "closed 4000 'go away'")
        assert state.closed == ["ann"]

    async def test_server_on_close_has_run_when_disconnect_returns(self) -> None:
        app, state = board_app()
        async with board(app, "ann") as ann, board(app, "bob") as bob:
            await ann.call.echo("x")
            await bob.call.echo("x")
            await ann.disconnect()
            assert state.closed == ["ann"]
            assert len(state.rooms["main"]) == 1
        assert state.closed == ["ann", "bob"]
        assert state.rooms["main"] == set()

    async def test_name_and_repr(self) -> None:
        app, _ = board_app()
        unnamed = call_on(BoardApi, app)
        assert unnamed.name.startswith("BoardApi #")
        client = board(app, "ann")
        assert repr(client) == "<TestClient ann new>"
        async with client:
            call = client.call.echo("x")
            assert isinstance(call, Call)
            assert repr(call) == "<Call ann.call.echo>"
            assert call.name == "ann.call.echo"
            assert await call == "x"
            assert repr(client.mock.noted) == "<MethodMock ann.mock.noted>"


class TestTargets:
    def test_an_app_that_serves_nothing_at_the_path(self) -> None:
        app, _ = board_app()
        with pytest.raises(
            grestws.ContractError, match=r"serves no schema at /ws/other \(it serves /ws/board\)"
        ):
            call_on(Other.at("/ws/other"), app)

    def test_an_app_that_serves_another_contract_at_the_path(self) -> None:
        app, _ = board_app()
        with pytest.raises(grestws.ContractError, match="serves BoardApi at /ws/board, not OtherApi"):
            call_on(Other.at("/ws/board"), app)

    async def test_the_server_schema_itself_is_accepted(self) -> None:
        app, _ = board_app()
        async with call_on(ServerBoardApi, app, headers={"x-user": "ann"}) as client:
            assert (await client.call.who()).user == "ann"

    async def test_an_origin_the_app_refuses(self) -> None:
        app, _ = board_app(allowed_origins=["https://board.example"])
        refused = board(app, upgrade_headers={"origin": "https://evil.example"})
        with pytest.raises(grestws.ConnectError, match="403"):
            await refused.connect()
        assert refused.state is ClientState.CLOSED
        async with board(app, upgrade_headers={"origin": "https://board.example"}) as allowed:
            assert await allowed.call.echo("in") == "in"


# -- calls -------------------------------------------------------------------------------


class TestCalls:
    async def test_typed_results(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            note = await client.call.post(NewNote(text="hello", tags=["t"]))
            assert isinstance(note, Note)
            assert note.note_id == 1
            who = await client.call.who()
            assert isinstance(who, Who)
            assert await client.call.ticks(0) == 0

    async def test_concurrent_calls(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            answers = await asyncio.gather(*(client.call.echo(str(i)) for i in range(20)))
            assert answers == [str(i) for i in range(20)]

    async def test_to_match_returns_the_typed_result(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            note = await expect(client.call.post(NewNote(text="hello"))).to_match(
                {"noteId": 1, "text": "hello", "author": str}
            )
            assert note == Note(note_id=1, text="hello", author="ann")
            again = await expect(client.call.post(NewNote(text="again"))).to_match(
                Note(note_id=2, text="again", author="ann")
            )
            assert again.note_id == 2
            assert await expect(client.call.echo("x")).to_match("x") == "x"

    async def test_to_match_failure_has_the_diff_and_the_wire_log(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            with pytest.raises(AssertionError) as caught:
                await expect(client.call.post(NewNote(text="hello"))).to_match({"text": "bye", "noteId": 1})
        text = str(caught.value)
        assert text.startswith(
            "ann.call.post: the result does not match:\n  $.text: expected 'bye', got 'hello'\n"
        )
        assert "$.noteId" not in text
        assert "actual: Note(note_id=1, text='hello', author='ann')" in text
        assert "wire log of ann (-> sent, <- received):" in text
        assert '   -> r:BoardApi.post:1:{"text":"hello","tags":[]}' in text
        assert '   <- s:BoardApi.post:1:{"success":true' in text

    async def test_to_match_when_the_call_fails(self) -> None:
        app, _ = board_app(capacity=0)
        async with board(app) as client:
            with pytest.raises(AssertionError) as caught:
                await expect(client.call.post(NewNote(text="hello"))).to_match({"text": "hello"})
        text = str(caught.value)
        assert text.startswith(
            "ann.call.post: expected a result matching {'text': 'hello'}, got the error BOARD_FULL (400)"
        )
        assert "wire log of ann" in text
        assert isinstance(caught.value.__cause__, BoardFull)

    async def test_to_be_error_returns_the_typed_error(self) -> None:
        app, _ = board_app(capacity=1)
        async with board(app) as client:
            await client.call.post(NewNote(text="first"))
            error = await expect(client.call.post(NewNote(text="second"))).to_be_error(BoardFull)
        assert type(error) is BoardFull
        assert error.data == Quota(max_notes=1, used=1)
        assert error.data.max_notes == 1
        assert error.message == "The board is full"
        assert error.remote

    async def test_to_be_error_accepts_a_base_class(self) -> None:
        app, _ = board_app(capacity=0)
        async with board(app) as client:
            error = await expect(client.call.post(NewNote(text="x"))).to_be_error(grestws.ApiError)
        assert isinstance(error, BoardFull)

    async def test_to_be_error_when_the_call_succeeds(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            with pytest.raises(AssertionError) as caught:
                await expect(client.call.post(NewNote(text="fine"))).to_be_error(BoardFull)
        text = str(caught.value)
        assert text.startswith(
            "ann.call.post: expected BoardFull, got the result Note(note_id=1, text='fine', author='ann')"
        )
        assert "wire log of ann" in text

    async def test_to_be_error_when_the_call_fails_otherwise(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            with pytest.raises(AssertionError) as caught:
                await expect(client.call.post(NewNote(text=""))).to_be_error(BoardFull)
        text = str(caught.value)
        assert text.startswith(
            "ann.call.post: expected BoardFull, got ValidationError: VALIDATION_ERROR (422)"
        )
        assert "wire log of ann" in text
        assert isinstance(caught.value.__cause__, grestws.ValidationError)

    async def test_to_fail_validation(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            error = await expect(client.call.post(NewNote(text=""))).to_fail_validation("text")
            assert [issue.path for issue in error.data] == ["text"]
            await expect(client.call.post(NewNote(text=""))).to_fail_validation("$.text")
            await expect(client.call.post(NewNote(text=""))).to_fail_validation()
            error = await expect(client.call.post(NewNote(text="x", tags=["ok", ""]))).to_fail_validation(
                "tags.1"
            )
            assert [issue.path for issue in error.data] == ["tags.1"]

    async def test_to_fail_validation_at_a_wrong_path(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            with pytest.raises(AssertionError) as caught:
                await expect(client.call.post(NewNote(text=""))).to_fail_validation("text", "tags")
        text = str(caught.value)
        assert text.startswith(
            "ann.call.post: no validation issue at ['tags']; the issues: [Issue(path='text'"
        )
        assert "wire log of ann" in text

    async def test_to_fail_validation_when_the_call_succeeds(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            with pytest.raises(AssertionError, match="expected ValidationError, got the result 'x'"):
                await expect(client.call.echo("x")).to_fail_validation("text")

    async def test_fire_and_forget(self) -> None:
        app, state = board_app()
        async with board(app) as client:
            await client.call.record("one")
            await expect(client.call.record("two")).to_match(None)
            first = await expect(client.mock.noted).to_match({"text": "one"})
            second = await expect(client.mock.noted).to_match({"text": "two"})
        assert (first.note_id, second.note_id) == (-1, -2)
        assert state.recorded == 2

    async def test_expect_on_something_else(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            with pytest.raises(TypeError, match=r"expect\(\) takes a call"):
                expect(client.call.echo)
            with pytest.raises(TypeError, match=r"when\(\) takes a test client's mock"):
                when(client.call.echo)

    async def test_expect_on_a_plain_awaitable(self) -> None:
        async def three() -> int:
            return 3

        assert await expect(three()).to_match(3) == 3
        with pytest.raises(AssertionError) as caught:
            await expect(three()).to_match(4)
        assert str(caught.value) == "the call: the result does not match:\n  $: expected 4, got 3\nactual: 3"


# -- the server's calls ------------------------------------------------------------------


class TestPushes:
    async def test_to_match_waits_for_a_push_another_client_causes(self) -> None:
        app, _ = board_app()
        async with board(app, "ann") as ann, board(app, "bob") as bob:
            pushed, posted = await asyncio.gather(
                expect(bob.mock.noted).to_match({"text": "hi", "author": "ann"}),
                ann.call.post(NewNote(text="hi")),
            )
            assert pushed == posted
            assert isinstance(pushed, Note)
            expect(ann.mock.noted).not_to_be_called()

    async def test_to_match_takes_the_first_matching_arrival_not_consumed(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            for text in ("a", "b", "a"):
                await client.call.record(text)
            b = await expect(client.mock.noted).to_match({"text": "b"})
            first_a = await expect(client.mock.noted).to_match({"text": "a"})
            second_a = await expect(client.mock.noted).to_match({"text": "a"})
            assert [b.note_id, first_a.note_id, second_a.note_id] == [-2, -1, -3]
            with pytest.raises(AssertionError, match="nothing else arrived either"):
                await expect(client.mock.noted).to_match({"text": "a"}, timeout=0.01)

    async def test_to_match_fails_after_its_timeout_saying_what_arrived(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            await client.call.record("hello")
            await client.call.echo("sync")  # the push came before this answer
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(AssertionError) as caught:
                await expect(client.mock.noted).to_match({"text": "bye"}, timeout=0.05)
            assert loop.time() - started < 1.0
            text = str(caught.value)
            assert text.startswith(
                "ann.mock.noted: no call matching {'text': 'bye'} within 0.05 s\n"
                "this one arrived and does not match:\n"
                "  $.text: expected 'bye', got 'hello'\n"
            )
            assert "wire log of ann" in text
            assert '<- m:BoardApi.noted::{"noteId":-1,"text":"hello","author":"ann"}' in text
            await expect(client.mock.noted).to_match({"text": "hello"})  # still there

    async def test_the_failure_lists_three_arrivals_and_counts_the_rest(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            for text in "abcde":
                await client.call.record(text)
            await client.call.echo("sync")
            with pytest.raises(AssertionError) as caught:
                await expect(client.mock.noted).to_match({"text": "z"}, timeout=0)
            text = str(caught.value)
            assert text.count("this one arrived") == 3
            assert "... and 2 more" in text
            when(client.mock.noted).ignore()

    async def test_the_client_timeout_is_the_default(self) -> None:
        app, _ = board_app()
        async with board(app, timeout=0.05) as client:
            with pytest.raises(AssertionError, match=r"ann.mock.noted: no call within 0.05 s"):
                await expect(client.mock.noted).to_be_called()

    async def test_to_be_called_with_an_argument(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            await client.call.record("x")
            note = await expect(client.mock.noted).to_be_called()
            assert note.text == "x"

    async def test_a_push_without_argument_matches_none(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            await client.call.ticks(2)
            await expect(client.mock.tick).to_match(None)
            await expect(client.mock.tick).to_match(None)
            expect(client.mock.tick).not_to_be_called()

    async def test_to_be_called_without_argument(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            await client.call.ticks(1)
            await expect(client.mock.tick).to_be_called(timeout=0.05)

    async def test_to_be_called_with_a_scalar_argument(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            when(client.mock.confirm).reply("yes")
            await client.call.ask("ready?")
            assert await expect(client.mock.confirm).to_be_called(timeout=0.05) == "ready?"

    async def test_not_to_be_called(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            await client.call.echo("x")
            expect(client.mock.noted).not_to_be_called()
            await client.call.record("oops")
            await client.call.echo("sync")
            with pytest.raises(AssertionError) as caught:
                expect(client.mock.noted).not_to_be_called()
            text = str(caught.value)
            assert text.startswith(
                "ann.mock.noted: expected no call, got 1: Note(note_id=-1, text='oops', author='ann')"
            )
            assert "wire log of ann" in text
            await expect(client.mock.noted).to_be_called()
            expect(client.mock.noted).not_to_be_called()

    async def test_a_waiting_expectation_can_be_cancelled(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            waiting = asyncio.ensure_future(expect(client.mock.noted).to_match({}))
            await client.call.echo("sync")
            assert not waiting.done()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await client.call.record("later")
            assert (await expect(client.mock.noted).to_match({})).text == "later"

    async def test_a_call_arriving_as_the_expectation_starts_waiting(self) -> None:
        app, _ = board_app()
        client = board(app)
        mock = client.mock.tick
        loop = asyncio.get_running_loop()

        def arrive() -> None:  # what the session does when the push comes in
            with contextlib.suppress(StopIteration):
                mock().send(None)

        waiting = asyncio.ensure_future(expect(mock).to_match(None, timeout=0.1))
        loop.call_soon(arrive)  # runs right after the expectation's first step
        await waiting

    async def test_two_expectations_wait_at_once(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            first, second, _, _ = await asyncio.gather(
                expect(client.mock.noted).to_match({"text": "two"}),
                expect(client.mock.noted).to_match({"text": "one"}),
                client.call.record("one"),
                client.call.record("two"),
            )
            assert (first.text, second.text) == ("two", "one")


class TestRequests:
    async def test_reply(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            when(client.mock.confirm).reply("yes")
            assert await client.call.ask("ready?") == "yes"
            assert await client.call.ask("sure?") == "yes"
            # answered requests need no expectation, but one may check them
            assert await expect(client.mock.confirm).to_match("ready?") == "ready?"

    async def test_reply_set_before_connecting(self) -> None:
        app, _ = board_app()
        client = board(app)
        when(client.mock.confirm).reply("early")
        async with client:
            assert await client.call.ask("?") == "early"

    async def test_the_latest_answer_counts(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            when(client.mock.confirm).reply("yes")
            assert await client.call.ask("1") == "yes"
            when(client.mock.confirm).reply("no")
            assert await client.call.ask("2") == "no"

    async def test_fail_with_a_declared_error(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            when(client.mock.confirm).fail(Declined("Not now", data=Reason(why="busy")))
            assert await client.call.ask("ready?") == "declined: busy"

    async def test_fail_takes_only_an_api_error(self) -> None:
        app, _ = board_app()
        client = board(app)
        with pytest.raises(TypeError, match="ApiError"):
            when(client.mock.confirm).fail(ValueError("no"))  # type: ignore[arg-type]

    async def test_no_reply_answers_route_not_found_and_must_be_consumed(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            assert await client.call.ask("anyone?") == "ROUTE_NOT_FOUND"
            assert await expect(client.mock.confirm).to_match("anyone?") == "anyone?"

    async def test_no_reply_unconsumed_fails_the_disconnect(self) -> None:
        app, _ = board_app()
        client = board(app)
        await client.connect()
        assert await client.call.ask("anyone?") == "ROUTE_NOT_FOUND"
        with pytest.raises(UnconsumedCallsError, match=r"ann.mock.confirm\('anyone\?'\)"):
            await client.disconnect()

    async def test_ignore_a_request(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            when(client.mock.confirm).ignore()
            assert await client.call.ask("anyone?") == "ROUTE_NOT_FOUND"

    async def test_ignore_pushes_also_those_arrived_already(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            await client.call.ticks(2)
            when(client.mock.tick).ignore()
            await client.call.ticks(3)


# -- unconsumed calls --------------------------------------------------------------------


class TestUnconsumed:
    async def test_disconnect_raises_listing_them(self) -> None:
        app, state = board_app()
        client = board(app)
        await client.connect()
        await client.call.ticks(2)
        await client.call.record("left over")
        await client.call.echo("sync")  # the push of record() came before this answer
        with pytest.raises(UnconsumedCallsError) as caught:
            await client.disconnect()
        assert isinstance(caught.value, AssertionError)
        text = str(caught.value)
        assert text.startswith(
            "ann: calls from the server that no expectation consumed:\n"
            "  ann.mock.noted(Note(note_id=-1, text='left over', author='ann'))\n"
            "  ann.mock.tick(None)\n"
            "  ann.mock.tick(None)\n"
            "consume each with `await expect(client.mock.<method>).to_match(...)`"
        )
        assert "wire log of ann" in text
        assert client.state is ClientState.CLOSED
        assert state.closed == ["ann"]  # the connection closed all the same

    async def test_it_is_raised_once(self) -> None:
        app, _ = board_app()
        client = board(app)
        await client.connect()
        await client.call.ticks(1)
        with pytest.raises(UnconsumedCallsError):
            await client.disconnect()
        await client.disconnect()
        client.check_consumed()

    async def test_many_are_counted(self) -> None:
        app, _ = board_app()
        client = board(app)
        await client.connect()
        await client.call.ticks(13)
        with pytest.raises(UnconsumedCallsError) as caught:
            await client.disconnect()
        text = str(caught.value)
        assert text.count("ann.mock.tick(None)") == 10
        assert "  ... and 3 more of ann.mock.tick" in text

    async def test_check_consumed_while_connected(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            client.check_consumed()
            await client.call.ticks(1)
            with pytest.raises(UnconsumedCallsError, match=r"ann.mock.tick\(None\)"):
                client.check_consumed()
            client.check_consumed()

    async def test_async_with_raises_them(self) -> None:
        app, _ = board_app()
        with pytest.raises(UnconsumedCallsError, match=r"ann.mock.tick"):
            async with board(app) as client:
                await client.call.ticks(1)

    async def test_fail_on_unconsumed_false(self) -> None:
        app, _ = board_app()
        async with board(app, fail_on_unconsumed=False) as client:
            await client.call.ticks(2)
            await client.call.record("x")
        client.check_consumed()

    async def test_an_error_in_the_block_is_not_masked(self) -> None:
        app, state = board_app()
        client = board(app)

        async def failing() -> None:
            async with client:
                await client.call.ticks(1)
                raise ValueError("the test's own failure")

        with pytest.raises(ValueError, match="the test's own failure") as caught:
            await failing()
        assert not isinstance(caught.value.__context__, UnconsumedCallsError)
        assert client.state is ClientState.CLOSED
        assert state.closed == ["ann"]
        await client.disconnect()  # reported once: not again now
        client.check_consumed()

    async def test_a_failed_expectation_in_the_block_is_not_masked(self) -> None:
        app, _ = board_app()

        async def failing() -> None:
            async with board(app) as client:
                await client.call.ticks(1)
                await expect(client.mock.noted).to_match({"text": "y"}, timeout=0.01)

        with pytest.raises(AssertionError) as caught:
            await failing()
        assert not isinstance(caught.value, UnconsumedCallsError)
        assert str(caught.value).startswith("ann.mock.noted: no call matching {'text': 'y'}")


# -- several users: the chat example -----------------------------------------------------


class TestChat:
    async def test_two_users_chatting(self) -> None:
        async with (
            call_on(ChatApi, chat_app, token="secret-ann", name="ann") as ann,
            call_on(ChatApi, chat_app, token="secret-bob", name="bob") as bob,
        ):
            sent = await expect(
                ann.call.send_message(SendMessageRequest(text="hi bob", channel_id="c"))
            ).to_match({"success": True, "messageId": str})
            seen = await expect(bob.mock.new_message).to_match({"text": "hi bob", "senderId": "ann"})
            assert isinstance(seen, Message)
            assert seen.id == sent.message_id
            await expect(ann.mock.new_message).to_match({"id": sent.message_id})

            await bob.call.send_message(SendMessageRequest(text="hi ann", channel_id="c"))
            await expect(ann.mock.new_message).to_match({"text": "hi ann", "sender_id": "bob"})
            await expect(bob.mock.new_message).to_match({"text": "hi ann"})

    async def test_scopes_of_different_identities(self) -> None:
        async with (
            call_on(ChatApi, chat_app, token="secret-ann", name="ann") as ann,
            call_on(ChatApi, chat_app, token="secret-admin", name="admin") as admin,
        ):
            when(ann.mock.new_message).ignore()
            when(admin.mock.new_message).ignore()
            sent = await ann.call.send_message(SendMessageRequest(text="spam", channel_id="c"))
            delete = DeleteMessageRequest(message_id=sent.message_id)
            error = await expect(ann.call.delete_message(delete)).to_be_error(grestws.ForbiddenError)
            assert "chat:admin" in str(error)
            assert await expect(admin.call.delete_message(delete)).to_match(True) is True
            assert await admin.call.delete_message(delete) is False

    async def test_validation_on_the_server(self) -> None:
        async with call_on(ChatApi, chat_app, token="secret-ann", name="ann") as ann:
            await expect(
                ann.call.send_message(SendMessageRequest(text="", channel_id="c"))
            ).to_fail_validation("text")

    async def test_fire_and_forget(self) -> None:
        async with call_on(ChatApi, chat_app, token="secret-ann", name="ann") as ann:
            await ann.call.ping()
            await ann.call.mark_as_read(MarkAsReadRequest(message_id="m1"))

    async def test_not_authorized_without_a_token(self) -> None:
        anonymous = call_on(ChatApi, chat_app, name="anonymous")
        with pytest.raises(grestws.NotAuthorizedError):
            await anonymous.connect()
        assert anonymous.state is ClientState.CLOSED
        assert "NOT_AUTHORIZED" in anonymous.log.render()
        await anonymous.disconnect()

    async def test_not_authorized_with_a_wrong_token_in_async_with(self) -> None:
        with pytest.raises(grestws.NotAuthorizedError):
            async with call_on(ChatApi, chat_app, token="forged"):
                pass

    async def test_a_refused_client_may_connect_again_with_a_token(self) -> None:
        client = call_on(ChatApi, chat_app, name="late")
        with pytest.raises(grestws.NotAuthorizedError):
            await client.connect()
        await client.connect(token="secret-late")
        assert client.state is ClientState.OPEN
        await client.disconnect()

    async def test_token_given_to_connect(self) -> None:
        client = call_on(ChatApi, chat_app, name="late")
        await client.connect(token="secret-late")
        when(client.mock.new_message).ignore()
        sent = await client.call.send_message(SendMessageRequest(text="x", channel_id="c"))
        assert sent.success
        await client.disconnect()


# -- query and headers -------------------------------------------------------------------


class TestHandshake:
    async def test_query_on_connect(self) -> None:
        app, _ = board_app()
        async with call_on(BoardApi, app, query=BoardQuery(room="kitchen")) as client:
            assert await client.call.who() == Who(user="anonymous", room="kitchen", locale="en")

    async def test_query_given_to_connect(self) -> None:
        app, _ = board_app()
        client = call_on(BoardApi, app, query=BoardQuery(room="kitchen"))
        await client.connect(query=BoardQuery(room="attic"))
        assert (await client.call.who()).room == "attic"
        await client.disconnect()

    async def test_a_query_that_does_not_fit(self) -> None:
        app, _ = board_app()
        client = call_on(BoardApi, app, query=BoardQuery(room=""))
        with pytest.raises(grestws.ValidationError) as caught:
            await client.connect()
        assert [issue.path for issue in caught.value.data] == ["room"]

    async def test_rooms_of_the_query_keep_pushes_apart(self) -> None:
        app, _ = board_app()
        async with (
            board(app, "ann", query=BoardQuery(room="kitchen")) as ann,
            board(app, "bob", query=BoardQuery(room="kitchen")) as bob,
            board(app, "carol", query=BoardQuery(room="attic")) as carol,
        ):
            await ann.call.post(NewNote(text="dinner"))
            await expect(bob.mock.noted).to_match({"text": "dinner"})
            await carol.call.echo("sync")
            expect(carol.mock.noted).not_to_be_called()

    async def test_handshake_headers_reach_the_middleware(self) -> None:
        app, _ = board_app()
        headers = {"x-user": "ann", "x-locale": "fr"}
        async with call_on(BoardApi, app, headers=headers) as client:
            assert await client.call.who() == Who(user="ann", room="main", locale="fr")
        assert '-> h:::{"x-user":"ann","x-locale":"fr"}' in client.log.render()

    async def test_headers_given_to_connect_replace_those_of_call_on(self) -> None:
        app, _ = board_app()
        client = call_on(BoardApi, app, headers={"x-user": "ann", "x-locale": "fr"})
        await client.connect(headers={"x-user": "bob"})
        assert await client.call.who() == Who(user="bob", room="main", locale="en")
        await client.disconnect()

    async def test_the_token_goes_before_the_headers(self) -> None:
        app, _ = board_app()
        async with call_on(BoardApi, app, token="t0k", headers={"x-user": "ann"}) as client:
            await client.call.echo("x")
        assert '-> h:::{"authorization":"Bearer t0k","x-user":"ann"}' in client.log.render()


# -- at a URL ----------------------------------------------------------------------------


class TestUrl:
    async def test_calls_pushes_and_requests(self, start_server: StartServer) -> None:
        app, state = board_app(capacity=1)
        server = await start_server(app)
        async with board(server.url, "ann") as ann, board(server.url, "bob") as bob:
            assert ann.url == server.url
            note = await expect(ann.call.post(NewNote(text="hi"))).to_match({"noteId": 1, "author": "ann"})
            assert await expect(bob.mock.noted).to_match({"text": "hi"}) == note
            error = await expect(bob.call.post(NewNote(text="more"))).to_be_error(BoardFull)
            assert error.data == Quota(max_notes=1, used=1)
            await expect(bob.call.post(NewNote(text=""))).to_fail_validation("text")

            when(ann.mock.confirm).reply("yes")
            assert await ann.call.ask("ready?") == "yes"
            when(ann.mock.confirm).fail(Declined("no", data=Reason(why="busy")))
            assert await ann.call.ask("ready?") == "declined: busy"
            assert await bob.call.ask("ready?") == "ROUTE_NOT_FOUND"
            await expect(bob.mock.confirm).to_match("ready?")

            await ann.call.record("back")
            await expect(ann.mock.noted).to_match({"text": "back", "noteId": -1})
            assert await ann.call.who() == Who(user="ann", room="main", locale="en")
        rendered = ann.log.render()
        assert '-> r:BoardApi.post:1:{"text":"hi","tags":[]}' in rendered
        assert '<- r:BoardApi.confirm:1:"ready?"' in rendered
        assert list(ann.log)[-1] == (Direction.CLOSED, "closed 1000 ''")
        assert state.notes == [note]

    async def test_query_over_a_socket(self, start_server: StartServer) -> None:
        app, _ = board_app()
        server = await start_server(app)
        async with call_on(BoardApi, server.url, query=BoardQuery(room="kitchen")) as client:
            assert (await client.call.who()).room == "kitchen"

    async def test_unconsumed_and_failures_over_a_socket(self, start_server: StartServer) -> None:
        app, _ = board_app()
        server = await start_server(app)
        client = board(server.url)
        await client.connect()
        await client.call.ticks(1)
        with pytest.raises(AssertionError) as caught:
            await expect(client.mock.noted).to_match({}, timeout=0.05)
        assert "nothing else arrived either" in str(caught.value)
        assert "<- m:BoardApi.tick::" in str(caught.value)
        with pytest.raises(UnconsumedCallsError, match=r"ann.mock.tick\(None\)"):
            await client.disconnect()

    async def test_no_server_there(self) -> None:
        client = call_on(BoardApi, "ws://127.0.0.1:1", timeout=2.0)
        with pytest.raises(grestws.ConnectError):
            await client.connect()


# -- the wire log ------------------------------------------------------------------------


class TestWireLog:
    async def test_every_frame_in_order_and_the_close(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            await client.call.echo("x")
            await client.call.ticks(1)
            await expect(client.mock.tick).to_match(None)
        assert list(client.log) == [
            (Direction.SENT, 'h:::{"x-user":"ann"}'),
            (Direction.RECEIVED, "k:::null"),
            (Direction.SENT, 'r:BoardApi.echo:1:"x"'),
            (Direction.RECEIVED, 's:BoardApi.echo:1:{"success":true,"type":"OK","data":"x"}'),
            (Direction.SENT, "r:BoardApi.ticks:2:1"),
            (Direction.RECEIVED, "m:BoardApi.tick::"),
            (Direction.RECEIVED, 's:BoardApi.ticks:2:{"success":true,"type":"OK","data":1}'),
            (Direction.CLOSED, "closed 1000 ''"),
        ]
        lines = client.log.render().splitlines()
        assert lines[0] == "wire log of ann (-> sent, <- received):"
        assert lines[1] == '   -> h:::{"x-user":"ann"}'
        assert lines[-1] == "   xx closed 1000 ''"

    async def test_a_refused_handshake_and_its_close(self) -> None:
        client = call_on(ChatApi, chat_app, name="anonymous")
        with pytest.raises(grestws.NotAuthorizedError):
            await client.connect()
        directions = [direction for direction, _ in client.log]
        assert directions == [Direction.SENT, Direction.RECEIVED, Direction.CLOSED]
        assert list(client.log)[-1][1].startswith("closed 4001")

    async def test_long_frames_are_cut(self) -> None:
        app, _ = board_app()
        long = "y" * 3000
        async with board(app) as client:
            assert await client.call.echo(long) == long
        sent = [text for direction, text in client.log if direction is Direction.SENT and "echo" in text]
        assert len(sent) == 1
        assert sent[0].startswith('r:BoardApi.echo:1:"yyy')
        total = len('r:BoardApi.echo:1:""') + len(long)
        assert sent[0].endswith(f"... ({total - SHOWN} more characters)")
        assert len(sent[0]) < SHOWN + 40

    async def test_a_failure_quotes_the_end_of_the_log(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            for i in range(40):
                await client.call.echo(f"n{i}")
            with pytest.raises(AssertionError) as caught:
                await expect(client.call.echo("last")).to_match("other")
        text = str(caught.value)
        assert "earlier frames" in text
        assert '"n0"' not in text
        assert 'r:BoardApi.echo:41:"last"' in text
        assert len(text.split("wire log of ann")[1].splitlines()) <= 32


# -- what a first round of use found -------------------------------------------------------


class TestRefinements:
    async def test_a_reconnect_forgets_what_the_earlier_connection_got(self) -> None:
        app, _ = board_app()
        client = board(app, fail_on_unconsumed=False)
        async with client:
            await client.call.ticks(1)
            await client.call.echo("round trip")  # the push has arrived
        async with client:
            expect(client.mock.tick).not_to_be_called()
            await client.call.ticks(1)
            await expect(client.mock.tick).to_be_called()

    async def test_reply_and_fail_on_a_fire_and_forget_method_are_refused(self) -> None:
        app, _ = board_app()
        client = board(app)
        with pytest.raises(TypeError, match="fire-and-forget"):
            when(client.mock.tick).reply(None)
        with pytest.raises(TypeError, match="fire-and-forget"):
            when(client.mock.tick).fail(grestws.NotFoundError("x"))

    async def test_a_refused_handshake_leaves_no_proxy_behind(self) -> None:
        async with call_on(ChatApi, chat_app, token="secret-ann") as ann:
            pass
        with pytest.raises(grestws.NotAuthorizedError):
            await ann.connect(token="forged")
        with pytest.raises(grestws.InvalidStateError):
            _ = ann.call
        assert not ann.left_connected

    async def test_with_timeout_keeps_the_wire_log_in_failures(self) -> None:
        app, _ = board_app()
        async with board(app) as client:
            hurried = client.with_timeout(2.0)
            with pytest.raises(AssertionError, match="wire log of ann"):
                await expect(hurried.echo("x")).to_match("y")

    def test_an_app_that_could_not_be_served_is_refused(self) -> None:
        app = grestws.App()
        app.add(ChatApi, chat_server.ChatHandler)  # no BearerAuth: chat:admin can never be granted
        with pytest.raises(grestws.ContractError, match="cannot be served"):
            call_on(ChatApi, app)

    async def test_the_upgrade_carries_the_host_of_the_url(self) -> None:
        seen: list[str | None] = []

        class Host(grestws.Middleware):
            def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
                seen.append(handshake.request.headers.get("host"))

        class Hello(OtherServer):
            def __init__(self, conn: object) -> None:
                del conn

            async def hello(self) -> str:
                return "hello"

        app = grestws.App()
        app.add(Other.at("/other").use(Host()), Hello)
        async with call_on(Other.at("/other"), app) as client:
            assert await client.call.hello() == "hello"
        assert seen == ["testserver"]
