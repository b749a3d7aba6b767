"""Fuzzing a real server with random and adversarial frames, spoken by a plain websockets peer.

Each hypothesis example opens two raw sockets to a :func:`grestws.serve` server on 127.0.0.1
while a bystander (a normal :func:`grestws.connect` client of the same server) keeps calling:

- the *attacker* does the handshake and sends a drawn list of frames: valid and invalid
  calls to RoomApi, wrong frame kinds, bad ids, long paths, deep nesting, huge numbers,
  invalid UTF-8 in text frames, binary frames, fragmented frames, bursts of calls that stay
  in flight;
- the *latecomer* sends frames before its ``h`` (dropped: none may be answered), then ``h``
  and more frames at once, without waiting for ``k``.

Whatever was sent, the server must answer every valid request (``r`` with a path of at
most 256 bytes and an id from 1 to 2**53 - 1 without leading zeros, per docs/protocol.md;
binary frames are read as text) with exactly one ``s`` of the same path and id, and
nothing else; send ``k`` first; answer every ``p`` with one ``o``; answer valid input OK
(nesting in a skipped field included) and input nested too deep to decode VALIDATION_ERROR; log no
ERROR (see tests/conftest.py); report no failed handler; and leave the bystander's calls
and connection alone. The rate limits are off there (the in-flight cap stays); another test
floods a server with default limits until it closes the peer with 1008.

Which frames are valid requests is decided here, from the bytes actually sent, by
:func:`request_of`; a frame whose id was used before on its socket gets a fresh id.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import grestws
from tests.conftest import StartServer
from tests.servers import ServedApp
from tests.support import (
    WAIT,
    CallInfo,
    Kick,
    Note,
    Posted,
    Question,
    RoomApi,
    RoomClient,
    RoomFull,
    RoomInfo,
    RoomServer,
    call_info,
)

MAX_ID = 2**53 - 1
MAX_PATH = 256
SERVER_PATHS = sorted(RoomApi.contract.client_to_server.by_path)
CLIENT_PATHS = sorted(RoomApi.contract.server_to_client.by_path)
ANSWER_TYPES = {"OK", "VALIDATION_ERROR", "ROUTE_NOT_FOUND", "TOO_MANY_REQUESTS", "ROOM_FULL"}
"""What the fuzzed server may answer: never SERVER_ERROR, since no handler fails."""
BAD_KINDS = {
    grestws.IncidentKind.HANDLER_FAILED,
    grestws.IncidentKind.DEADLINE_EXCEEDED,
    grestws.IncidentKind.SLOW_CONSUMER,
    grestws.IncidentKind.POLICY_CLOSE,
    grestws.IncidentKind.DEAD_PEER,
    grestws.IncidentKind.PUSH_DROPPED,
}
"""Incidents the fuzz input must never cause while the rate limits are off."""


# -- the server under test --------------------------------------------------------------------


class FuzzState:
    """What the handlers of one server share with the test.

    Attributes:
        release: ``block`` calls wait for it; each example sets it at its end and makes a new one.
        connections: The server side of every connection, in order (the bystander's first).
    """

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.connections: list[grestws.ServerConnection[RoomClient]] = []


class FuzzHandler(RoomServer):
    """RoomApi handlers that never fail on input that passed validation, and never call
    the peer (a raw peer would not answer) or close it."""

    def __init__(self, conn: grestws.ServerConnection[RoomClient], state: FuzzState) -> None:
        self.state = state
        self.posted = 0
        state.connections.append(conn)

    async def post(self, note: Note) -> Posted:
        if note.room_id == "full":  # a declared error: an answer, not a failure
            raise RoomFull("Room is full", data=RoomInfo(room_id=note.room_id, seats=8))
        self.posted += 1
        return Posted(note_id=self.posted, text=note.text)

    async def count(self) -> int:
        return self.posted

    async def rename(self, question: Question) -> None:
        return None

    async def clear(self) -> None:
        self.posted = 0

    async def double(self, n: int) -> int:
        return 2 * n

    async def block(self) -> None:
        await self.state.release.wait()

    async def whoami(self) -> CallInfo:
        return call_info("server")

    async def ask_client(self, question: Question) -> str:
        return question.text.upper()

    async def record(self, note: Note) -> None:
        self.posted += 1

    async def poke(self) -> None:
        return None

    async def kick(self, kick: Kick) -> None:
        return None


def fuzz_app(state: FuzzState, incidents: list[grestws.Incident], **settings: Any) -> grestws.App:
    app = grestws.App(on_error=incidents.append, **settings)
    app.add(RoomApi, lambda conn: FuzzHandler(conn, state))
    return app


class Fuzz:
    """One server for all the examples of a test, and its bystander client.

    Attributes:
        posts: How many notes the bystander posted (its ``post`` answers count them).
    """

    def __init__(
        self,
        server: ServedApp,
        client: grestws.Client[RoomServer, RoomClient],
        state: FuzzState,
        incidents: list[grestws.Incident],
    ) -> None:
        self.server = server
        self.client = client
        self.state = state
        self.incidents = incidents
        self.posts = 0

    @property
    def url(self) -> str:
        return self.server.url + RoomApi.path

    def __repr__(self) -> str:  # shown in hypothesis' report of a failing example
        return f"<Fuzz {self.url}>"


@pytest.fixture
async def fuzz(start_server: StartServer) -> AsyncIterator[Fuzz]:
    """A server without rate limits (the default in-flight cap stays) and a connected bystander."""
    state = FuzzState()
    incidents: list[grestws.Incident] = []
    limits = grestws.Limits(rate=None, identity_rate=None)
    server = await start_server(fuzz_app(state, incidents, limits=limits))
    async with grestws.connect(server.url, RoomApi, handshake_timeout=WAIT, timeout=WAIT) as client:
        yield Fuzz(server, client, state, incidents)


async def bystander_call(fuzz: Fuzz, n: int) -> None:
    """One round of the bystander's calls, each checked for the right result."""
    outgoing = fuzz.client.outgoing
    assert await asyncio.wait_for(outgoing.double(n), WAIT) == 2 * n
    posted = await asyncio.wait_for(outgoing.post(Note(text=f"bystander {n}")), WAIT)
    fuzz.posts += 1
    assert posted == Posted(note_id=fuzz.posts, text=f"bystander {n}")
    if n % 8 == 0:
        assert await asyncio.wait_for(outgoing.count(), WAIT) == fuzz.posts


async def keep_calling(fuzz: Fuzz, stop: asyncio.Event) -> int:
    """Call until ``stop`` is set, at least once; how many rounds were made."""
    rounds = 0
    while rounds == 0 or not stop.is_set():
        await bystander_call(fuzz, rounds)
        rounds += 1
    return rounds


def assert_bystander_unharmed(fuzz: Fuzz) -> None:
    assert fuzz.client.state is grestws.ClientState.OPEN
    bystander = fuzz.state.connections[0]
    harmed = [incident for incident in fuzz.incidents if incident.connection is bystander]
    assert not harmed, f"the bystander's connection had incidents: {harmed}"


# -- what a frame is, by the rules of docs/protocol.md ----------------------------------------


def split(raw: bytes) -> list[bytes]:
    return raw.split(b":", 3)


def request_of(raw: bytes) -> tuple[str, int] | None:
    """The path and id of ``raw`` if it is a valid request, else None."""
    parts = split(raw)
    if len(parts) != 4 or parts[0] != b"r":
        return None
    _, path, ident, _ = parts
    if not path or len(path) > MAX_PATH:
        return None
    try:
        text = path.decode()
    except UnicodeDecodeError:
        return None
    # bytes.isdigit() is True for ASCII digits only
    if not ident.isdigit() or ident[:1] == b"0" or len(ident) > len(str(MAX_ID)):
        return None
    number = int(ident)
    return (text, number) if number <= MAX_ID else None


def is_kind(raw: bytes, letter: bytes) -> bool:
    """Whether ``raw`` is a well-formed frame of type ``letter`` (``h p o k x`` ignore path and id)."""
    parts = split(raw)
    return len(parts) == 4 and parts[0] == letter


# -- frames to send ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A frame sent as it is: its bytes in a text frame (UTF-8 or not), or a binary frame,
    in one piece or fragmented into ``pieces`` (cut anywhere, inside a character too)."""

    data: bytes
    binary: bool = False
    pieces: int = 1

    def fragments(self) -> list[bytes]:
        size, pieces = len(self.data), self.pieces
        return [self.data[i * size // pieces : (i + 1) * size // pieces] for i in range(pieces)]


@dataclass(frozen=True)
class Call:
    """A well-formed request to ``path``; its id is ``id`` if that is fresh on the socket.
    When ``expect`` is given, the answer's type is one of them (or TOO_MANY_REQUESTS, when
    the in-flight cap is reached)."""

    path: str
    data: bytes
    id: int | None = None
    expect: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Burst:
    """``count`` requests of ``RoomApi.block``: in flight until the example ends, so a burst
    over the in-flight cap (128) gets TOO_MANY_REQUESTS answers."""

    count: int


MAX_BLOCKS = 400
"""Block requests per socket, at most: every request refused while 128 are in flight is a
strike, and a peer refused over 1000 times (in a second) is closed with 1008, by design."""


Item = Raw | Call | Burst


class Peer:
    """A raw socket, what it sent and what it received.

    Attributes:
        expected: The path of each valid request sent after ``h``, by id.
        silent: Ids of valid requests sent before ``h`` (dropped: never answered).
        pings: Well-formed ``p`` frames sent after ``h``.
        answers: How many ``s`` frames came back, by id (as sent on the wire).
        answer_paths: The paths of the ``s`` frames, by id.
        odd: Whatever came back that is neither ``s``, ``o`` nor ``k:::null``, or an ``s``
            whose data is not a well-formed result envelope of an expected type.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.used: set[int] = set()
        self._next_id = 1
        self.blocks = 0
        self.expected: dict[int, str] = {}
        self.silent: set[int] = set()
        self.sent: dict[int, bytes] = {}
        self.expect: dict[int, frozenset[str]] = {}
        self.pings = 0
        self.answers: Counter[str] = Counter()
        self.answer_paths: dict[str, set[str]] = {}
        self.answer_types: Counter[str] = Counter()
        self.answer_type: dict[str, str] = {}
        self.pongs = 0
        self.accepted = 0
        self.first: str | bytes | None = None
        self.odd: list[str | bytes] = []
        self.closed = False
        self._changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                self._take(message)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._changed.set()

    def _take(self, message: str | bytes) -> None:
        if self.first is None:
            self.first = message
        if not isinstance(message, str):
            self.odd.append(message)
        elif message == "o:::":
            self.pongs += 1
        elif message == "k:::null":
            self.accepted += 1
        elif message.startswith("s:") and message.count(":") >= 3:
            _, path, ident, data = message.split(":", 3)
            self.answers[ident] += 1
            self.answer_paths.setdefault(ident, set()).add(path)
            try:
                envelope = json.loads(data)
            except ValueError:
                envelope = None
            kind = envelope.get("type") if isinstance(envelope, dict) else None
            self.answer_types[str(kind)] += 1
            self.answer_type[ident] = str(kind)
            if (
                not isinstance(envelope, dict)
                or kind not in ANSWER_TYPES
                or envelope.get("success") is not (kind == "OK")
            ):
                self.odd.append(message)
        else:
            self.odd.append(message)

    def fresh_id(self) -> int:
        while self._next_id in self.used:
            self._next_id += 1
        self.used.add(self._next_id)
        return self._next_id

    def frames(self, item: Item) -> list[Raw]:
        """The frames that send ``item`` on this socket, with fresh ids for its requests."""
        if isinstance(item, Burst):
            count = min(item.count, MAX_BLOCKS - self.blocks)
            self.blocks += count
            return [Raw(b"r:RoomApi.block:%d:" % self.fresh_id()) for _ in range(count)]
        if isinstance(item, Call):
            ident = item.id if item.id is not None and item.id not in self.used else self.fresh_id()
            self.used.add(ident)
            if item.expect:
                self.expect[ident] = item.expect
            return [Raw(b"r:%b:%d:%b" % (item.path.encode(), ident, item.data))]
        request = request_of(item.data)
        if request is not None:
            path, ident = request
            if ident in self.used:
                data = b"r:%b:%d:%b" % (path.encode(), self.fresh_id(), split(item.data)[3])
                item = Raw(data, item.binary, item.pieces)
            self.used.add(ident)
        return [item]

    async def send(self, items: Iterable[Item], *, before_handshake: bool = False) -> None:
        """Send ``items`` and note what must come back. Before ``h``, a frame that the server
        would take for the handshake is left out."""
        for item in items:
            for frame in self.frames(item):
                raw = frame.data
                if before_handshake and is_kind(raw, b"h"):
                    continue
                request = request_of(raw)
                if request is not None:
                    path, ident = request
                    self.sent[ident] = raw
                    if before_handshake:
                        self.silent.add(ident)
                    else:
                        self.expected[ident] = path
                elif is_kind(raw, b"p") and not before_handshake:
                    self.pings += 1
                if frame.pieces == 1:
                    await self.ws.send(raw, text=not frame.binary)
                else:
                    await self.ws.send(frame.fragments(), text=not frame.binary)

    async def wait_until(self, done: Callable[[], bool], what: Callable[[], str]) -> None:
        """Wait (at most WAIT s) until ``done()``; fail with ``what()`` otherwise."""
        try:
            async with asyncio.timeout(WAIT):
                while not done():
                    if self.closed:
                        break
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass
        if not done():
            pytest.fail(f"{what()} (socket closed: {self.closed}, code {self.ws.close_code})")

    def missing(self) -> list[int]:
        return sorted(ident for ident in self.expected if str(ident) not in self.answers)

    def excerpts(self, idents: Iterable[int | str]) -> list[bytes]:
        """What was sent with these ids (ends of long frames cut), for failure messages."""
        frames: list[bytes] = []
        for ident in sorted(map(str, idents))[:10]:
            frame = (
                self.sent.get(int(ident), b"?") if ident.isascii() and ident.isdigit() else b"(id %r)" % ident
            )
            frames.append(frame if len(frame) <= 200 else frame[:120] + b"..." + frame[-60:])
        return frames

    async def settle(self) -> None:
        """Wait for every expected answer, then for the answer of one more request sent after
        all the others: whatever the server would still send for them is in by then."""
        await self.wait_until(
            lambda: not self.missing(), lambda: f"unanswered requests: {self.excerpts(self.missing())}"
        )
        await self.wait_until(lambda: self.pongs >= self.pings, lambda: f"{self.pongs} of {self.pings} pongs")
        last = self.fresh_id()
        self.expected[last] = "RoomApi.count"
        await self.ws.send(f"r:RoomApi.count:{last}:")
        await self.wait_until(
            lambda: str(last) in self.answers, lambda: f"no answer to the final request {last}"
        )

    def check(self) -> None:
        """Exactly one answer per valid request, none to anything else, one pong per ping."""
        assert not self.odd, f"unexpected frames: {[frame[:200] for frame in self.odd[:5]]}"
        assert self.accepted == 1
        assert self.first == "k:::null", f"the first frame received was {self.first!r:.200}, not k"
        twice = {ident: n for ident, n in self.answers.items() if n != 1}
        assert not twice, f"answered more than once: {twice} {self.excerpts(twice)}"
        wrong_path = {
            ident: (path, self.answer_paths[str(ident)])
            for ident, path in self.expected.items()
            if self.answer_paths[str(ident)] != {path}
        }
        assert not wrong_path, f"answered with another path: {wrong_path}"
        extra = set(self.answers) - {str(ident) for ident in self.expected}
        assert not extra, f"answers to invalid requests or requests sent before h: {self.excerpts(extra)}"
        assert self.pongs == self.pings
        wrong_type = {
            ident: (self.answer_type[str(ident)], sorted(allowed))
            for ident, allowed in self.expect.items()
            if ident in self.expected and self.answer_type[str(ident)] not in allowed | {"TOO_MANY_REQUESTS"}
        }
        assert not wrong_type, f"wrong answers: {wrong_type} to {self.excerpts(wrong_type)}"


# -- strategies -------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), max_size=20)
bracket_texts = st.builds(
    lambda piece, times: piece * times,
    st.text(alphabet='[]{}"\\a:', min_size=1, max_size=12),
    st.integers(1, 40),
)
"""Up to 480 brackets, quotes and backslashes: inside a JSON string they nest nothing."""
big_ints = st.integers(-(10**400), 10**400)
"""Up to 400 digits: doubled they stay under Python's 4300-digit limit (see the xfail below)."""
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | big_ints | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def js(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


rooms = st.sampled_from(["lobby", "full", "x"]) | texts
notes = st.builds(
    lambda text, room: {"text": text, "roomId": room}, texts.filter(bool) | bracket_texts, rooms
)
questions = st.builds(lambda text: {"text": text}, texts | bracket_texts)
kicks = st.builds(lambda code, reason: {"code": code, "reason": reason}, st.integers(), texts)
VALID_INPUT: dict[str, st.SearchStrategy[Any]] = {
    "RoomApi.post": notes,
    "RoomApi.record": notes,
    "RoomApi.rename": questions,
    "RoomApi.askClient": questions,
    "RoomApi.double": big_ints,
    "RoomApi.kick": kicks,
}

NUMBERS = [
    "1e999999",
    "-1e999999",
    "1E400",
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "-0.0",
    "0e0",
    "1" + "0" * 400,
    "-" + "9" * 400,
    "0." + "0" * 400 + "1",
    str(MAX_ID),
    str(MAX_ID + 2),
    "18446744073709551616",
    "-9223372036854775809",
    "01",
    "+1",
    ".5",
    "1.",
    "0x10",
]
numbers = st.sampled_from(NUMBERS).flatmap(
    lambda number: st.sampled_from(
        [
            number,
            f'{{"n":{number}}}',
            f'{{"text":{number}}}',
            f'{{"code":{number},"reason":"r"}}',
            f"[{number}]",
        ]
    )
)


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """Nesting up to 5000 deep, balanced or not, bare or in a field."""
    opens = draw(st.integers(0, 5000))
    closes = draw(st.just(opens) | st.integers(0, 5000))
    shape = draw(st.sampled_from(["[", "{", "[{"]))
    if shape == "[":
        body = "[" * opens + "]" * closes
    elif shape == "{":
        body = '{"a":' * opens + "1" + "}" * closes
    else:
        body = '[{"a":' * (opens // 2) + "0" + "}]" * (closes // 2)
    name = draw(st.sampled_from(["text", "n", "roomId", ""]))
    return (f'{{"{name}":{body}}}' if name else body).encode()


@st.composite
def tricky_strings(draw: st.DrawFn) -> bytes:
    """Brackets, quotes and backslashes inside (or out of) strings: where the depth check
    must tell strings apart."""
    inside = draw(st.text(alphabet='[]{}"\\a:', max_size=80))
    repeat = draw(st.integers(1, 80))
    return f'{{"text":"{inside * repeat}"}}'.encode()


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    whole = js(draw(notes | json_values))
    return whole[: draw(st.integers(0, max(len(whole) - 1, 0)))]


any_payload: st.SearchStrategy[bytes] = st.one_of(
    st.just(b""),
    json_values.map(js),
    st.one_of(*VALID_INPUT.values()).map(js),
    numbers.map(str.encode),
    nested(),
    tricky_strings(),
    truncated(),
    texts.map(str.encode),
)


REQUESTS = {"RoomApi.post", "RoomApi.count", "RoomApi.rename", "RoomApi.clear", "RoomApi.double"}
REQUESTS |= {"RoomApi.whoami", "RoomApi.askClient"}
"""The request methods (not ``block``): valid input is answered OK (or ROOM_FULL)."""
SERVED = frozenset({"OK", "ROOM_FULL"})


@st.composite
def calls(draw: st.DrawFn) -> Call:
    """A well-formed request to a RoomApi method, with valid or invalid input."""
    path = draw(st.sampled_from([path for path in SERVER_PATHS if path != "RoomApi.block"]))
    valid = VALID_INPUT.get(path)
    expect = frozenset[str]()
    if valid is not None and draw(st.booleans()):
        data = js(draw(valid))
        expect = SERVED
    elif valid is None and draw(st.booleans()):
        data = b""
        expect = SERVED
    else:
        data = draw(any_payload)
    ident = draw(st.none() | st.integers(1, MAX_ID) | st.just(MAX_ID))
    return Call(path, data, ident, expect if path in REQUESTS else frozenset())


@st.composite
def deep_notes(draw: st.DrawFn) -> Call:
    """A note whose unknown field (skipped, so valid) nests around the depth limit, or far
    past what the decoder can follow.

    A Note has no field of type Any, so nothing nested reaches its handler: Limits.max_depth
    does not apply, the skipped field is valid up to the decoder's own recursion limit
    (about 900 levels), and past that the request is a VALIDATION_ERROR (too_deep).
    """
    depth = draw(st.integers(0, 70) | st.sampled_from([63, 64, 65, 200, 3000]))
    arrays = draw(st.booleans())
    extra = "[" * depth + "0" + "]" * depth if arrays else '{"a":' * depth + "1" + "}" * depth
    text = draw(bracket_texts | texts.filter(bool))
    data = b'{"text":%b,"extra":%b}' % (js(text), extra.encode())
    return Call("RoomApi.post", data, expect=SERVED if depth <= 200 else frozenset({"VALIDATION_ERROR"}))


LETTERS = ["r", "r", "r", "m", "m", "s", "h", "k", "x", "p", "o", "", "R", "rr", "z", "é", "\x00", " r"]
BAD_IDS = [
    "",
    "0",
    "00",
    "01",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1.0",
    "1e3",
    "0x1",
    "abc",
    "\u0661\u0662",  # Arabic-Indic digits: str.isdigit() is True for them
    "\u00b2",
    str(MAX_ID + 1),
    "99999999999999999999",
    "1" * 40,
]
paths = st.one_of(
    st.sampled_from(SERVER_PATHS + CLIENT_PATHS),
    st.sampled_from(
        ["RoomApi.", ".post", "RoomApi.post.x", "roomapi.post", " RoomApi.post", "RoomApi.post\n"]
    ),
    texts,
    st.integers(MAX_PATH - 2, MAX_PATH + 2).map(lambda n: "p" * n),
    st.integers(MAX_PATH // 2 - 1, MAX_PATH // 2 + 1).map(lambda n: "é" * n),
    st.integers(MAX_PATH, 3000).map(lambda n: "RoomApi." + "x" * n),
)
ids = st.one_of(
    st.integers(1, 60).map(str),
    st.integers(1, MAX_ID).map(str),
    st.sampled_from(BAD_IDS),
    st.integers(MAX_ID + 1, 10**30).map(str),
)


pieces = st.sampled_from([1] * 6 + [2, 3, 7])
"""How many fragments a frame is sent in."""


@st.composite
def composed(draw: st.DrawFn) -> Raw:
    """``<type>:<path>:<id>:<data>`` from drawn fields, sometimes with fewer colons, in a text
    or (rarely) a binary frame."""
    fields = [draw(st.sampled_from(LETTERS)).encode(), draw(paths).encode(), draw(ids).encode()]
    fields.append(draw(any_payload))
    colons = draw(st.sampled_from([3, 3, 3, 3, 3, 3, 2, 1, 0]))
    binary = draw(st.sampled_from([False] * 7 + [True]))
    return Raw(b":".join(fields[: colons + 1]), binary, draw(pieces))


@st.composite
def corrupted(draw: st.DrawFn) -> Raw:
    """A frame with bytes that are not UTF-8 spliced in, in a text frame."""
    frame = draw(composed() | calls().map(lambda call: Raw(b"r:%b:1:%b" % (call.path.encode(), call.data))))
    junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80\x80"]))
    at = draw(st.integers(0, len(frame.data)))
    return Raw(frame.data[:at] + junk + frame.data[at:], pieces=draw(pieces))


FIXED = [
    "",
    "r",
    "r:",
    "r::",
    "r:::",
    "h",
    "k",
    "x",
    "s",
    "o",
    "p",
    "m",
    "z",
    ":::",
    "::::::",
    "h:::{}",
    'h:::{"authorization":"Bearer x"}',
    "k:::null",
    'x:::{"success":false,"type":"FORBIDDEN","statusCode":403}',
    "o:::",
    "p:::",
    "p:a:b:c",
    "s:RoomApi.count:1:{}",
    's:RoomApi.answer:999:{"success":true,"type":"OK","data":"x"}',
    "s:RoomApi.answer:1:" + "[" * 5000,
    "s::1:",
    "s:X:0:",
    "m:RoomApi.poke::",
    "m:RoomApi.poke:1:",
    'm:RoomApi.record::{"text":""}',
    "m:RoomApi.record::" + "[" * 5000,
    "m:RoomApi.nope::{}",
    "m::::",
    "r:RoomApi.count:0:",
    "r:RoomApi.count:-1:",
    "r:RoomApi.count:01:",
    "r:RoomApi.count:abc:",
    "r:RoomApi.count::",
    f"r:RoomApi.count:{MAX_ID + 1}:",
    "r:RoomApi.count:99999999999999999999:",
    "r:RoomApi.count:1.0:",
    "r:RoomApi.count: 1:",
    "r:RoomApi.count:8",
    "R:RoomApi.count:9:",
    "rr:RoomApi.count:10:",
    "r::11:",
    f"r:{'P' * (MAX_PATH + 1)}:12:",
    f"r:{'P' * MAX_PATH}:13:",
    f"r:RoomApi.count:{MAX_ID}:",
    'r:RoomApi.post:14:{"text":"a","roomId":"full"}',
    'r:RoomApi.post:15:{"text":' + "[" * 5000 + "]" * 5000 + "}",
    'r:RoomApi.post:16:{"text":' + "[" * 5000 + "}",
    'r:RoomApi.post:17:{"text":"' + "[" * 5000 + '"}',
    'r:RoomApi.post:18:{"text":"\\\\"' + "[" * 100 + "}",
    'r:RoomApi.post:19:{"text":"\\"' + "[" * 100 + '"}',
    "r:RoomApi.double:20:1e999999",
    "r:RoomApi.double:21:" + "9" * 400,
    "r:RoomApi.double:22:NaN",
    "r:RoomApi.double:23:Infinity",
    "r:RoomApi.double:24:-0",
    "r:RoomApi.double:25:" + "[" * 64 + "1" + "]" * 64,
    "r:RoomApi.double:26:" + "[" * 65 + "1" + "]" * 65,
    "r:RoomApi.answer:27:{}",
    "r:RoomApi.nope:28:{}",
    "r:RoomApi.count:29:trailing:colons:",
    'r:RoomApi.rename:30:{"text":"\\ud800"}',
    "r:RoomApi.whoami:31:null",
    "r:RoomApi.clear:32:{}",
]
fixed = st.builds(lambda frame, n: Raw(frame.encode(), pieces=n), st.sampled_from(FIXED), pieces)
binary_junk = st.binary(max_size=64).map(lambda data: Raw(data, binary=True))
bursts = (st.integers(1, 8) | st.integers(1, 8) | st.integers(100, 140)).map(Burst)
items: st.SearchStrategy[Item] = st.one_of(
    calls(), calls(), deep_notes(), composed(), composed(), fixed, corrupted(), binary_junk, bursts
)
EXAMPLES = int(os.environ.get("GRESTWS_FUZZ_EXAMPLES", "0"))
"""For a longer run on fresh random inputs, with failing examples shrunk:
``GRESTWS_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py --timeout=0`` (about 30 examples a
second). By default the examples are the same on every run (derandomized), so the outcome
is too, and a failure is reported as found, unshrunk."""
HELLOS = ["h:::{}", "h:::", 'h:::{"x-client":"fuzz"}', "h:a:b:{}"]
"""``h`` frames the server accepts: path and id are ignored, no data means no headers."""


# -- the tests --------------------------------------------------------------------------------


def raws(frames: Iterable[str], *, binary: bool = False, pieces: int = 1) -> list[Item]:
    return [Raw(frame.encode(), binary, pieces) for frame in frames]


async def fuzz_round(fuzz: Fuzz, attack: list[Item], early: list[Item], hello: str, late: list[Item]) -> None:
    """One example: both raw sockets send their frames while the bystander calls."""
    fuzz.state.release = asyncio.Event()
    stop = asyncio.Event()
    bystander = asyncio.create_task(keep_calling(fuzz, stop))
    try:
        async with (
            ws_connect(fuzz.url, open_timeout=WAIT) as attacker_ws,
            ws_connect(fuzz.url, open_timeout=WAIT) as latecomer_ws,
        ):
            attacker, latecomer = Peer(attacker_ws), Peer(latecomer_ws)
            await latecomer.send(early, before_handshake=True)
            await latecomer_ws.send(hello)
            await latecomer.send(late)  # at once: the server keeps what follows h for the session
            await attacker_ws.send("h:::{}")
            await attacker.wait_until(lambda: attacker.accepted > 0, lambda: "no k:::null")
            await attacker.send(attack)
            await latecomer.wait_until(lambda: latecomer.accepted > 0, lambda: "no k:::null")
            fuzz.state.release.set()
            for peer in (attacker, latecomer):
                await peer.settle()
                peer.check()
                assert not peer.closed
        await asyncio.wait_for(asyncio.gather(attacker.reader, latecomer.reader), WAIT)
    finally:
        stop.set()
        rounds = await asyncio.wait_for(bystander, WAIT)
    assert rounds >= 1
    bad = [incident for incident in fuzz.incidents if incident.kind in BAD_KINDS]
    assert not bad, f"incidents caused by the fuzz input: {bad[:5]}"
    assert_bystander_unharmed(fuzz)


@pytest.mark.websockets_only(
    "sends invalid UTF-8 in text frames: grestws.serve reads them as bytes and answers them, "
    "uvicorn fails the connection with 1007 (as RFC 6455 says) and logs an ERROR"
)
@settings(
    max_examples=EXAMPLES or 150,
    deadline=None,
    derandomize=not EXAMPLES,
    # a failing example can wait WAIT s for an answer: shrinking it could take minutes
    phases=tuple(Phase) if EXAMPLES else (Phase.explicit, Phase.generate),
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    attack=st.lists(items, min_size=1, max_size=30),
    early=st.lists(items, max_size=6),
    hello=st.sampled_from(HELLOS),
    late=st.lists(items, max_size=8),
)
@example(attack=raws(FIXED), early=raws(FIXED), hello="h:::{}", late=raws(FIXED))
@example(
    attack=[Burst(140), Call("RoomApi.count", b""), Raw(b"p:::"), Burst(3)],
    early=[Burst(3)],
    hello="h:::",
    late=[Burst(130), Raw(b"r:RoomApi.count:1:")],
)
@example(attack=raws(FIXED, binary=True), early=[], hello="h:::{}", late=raws(FIXED, pieces=3))
async def test_fuzzed_frames_are_answered_once_and_harm_nobody(
    fuzz: Fuzz, attack: list[Item], early: list[Item], hello: str, late: list[Item]
) -> None:
    await fuzz_round(fuzz, attack, early, hello, late)


def flood_item(n: int) -> Item:
    """The ``n``-th frame of a flood: requests answered OK or not, pings and garbage."""
    kind = n % 6
    if kind == 0:
        return Call("RoomApi.count", b"", n)
    if kind == 1:
        return Call("RoomApi.double", str(n).encode(), n)
    if kind == 2:
        return Raw(b"p:::")
    if kind == 3:
        return Call("RoomApi.post", b'{"text":' + b"[" * 100 + b"}", n)
    if kind == 4:
        return Raw(b"zz")
    return Call("RoomApi.nope", b"", n)


async def test_a_flood_is_closed_with_1008_and_spares_the_bystander(start_server: StartServer) -> None:
    """Default limits: a peer sending as fast as it can is refused past the rate, then closed
    with 1008; what it was answered before, it was answered at most once."""
    state = FuzzState()
    incidents: list[grestws.Incident] = []
    server = await start_server(fuzz_app(state, incidents))
    async with grestws.connect(server.url, RoomApi, handshake_timeout=WAIT, timeout=WAIT) as client:
        fuzz = Fuzz(server, client, state, incidents)
        ticks: asyncio.Queue[int | None] = asyncio.Queue()

        async def bystander() -> int:
            # one round per tick of the flood: the bystander keeps far below its own rate limit
            rounds = 0
            while (tick := await asyncio.wait_for(ticks.get(), WAIT)) is not None:
                await bystander_call(fuzz, tick)
                rounds += 1
            return rounds

        bystanding = asyncio.create_task(bystander())
        try:
            async with ws_connect(fuzz.url, open_timeout=WAIT) as ws:
                peer = Peer(ws)
                await ws.send("h:::{}")
                await peer.wait_until(lambda: peer.accepted > 0, lambda: "no k:::null")
                async with asyncio.timeout(20):
                    n = 0
                    while not peer.closed:
                        n += 1
                        try:
                            await peer.send([flood_item(n)])
                        except ConnectionClosed:
                            break
                        if n % 100 == 0:
                            ticks.put_nowait(n)
                            await asyncio.sleep(0)  # let the server and the bystander run
                    await asyncio.wait_for(peer.reader, WAIT)
                assert (ws.close_code, ws.close_reason) == (1008, "Too many requests")
        finally:
            ticks.put_nowait(None)
            rounds = await asyncio.wait_for(bystanding, WAIT)
        assert rounds >= 1

        assert not peer.odd, f"unexpected frames: {[frame[:200] for frame in peer.odd[:5]]}"
        twice = {ident: count for ident, count in peer.answers.items() if count != 1}
        assert not twice, f"answered more than once: {twice}"
        extra = set(peer.answers) - {str(ident) for ident in peer.expected}
        assert not extra
        for ident, paths_seen in peer.answer_paths.items():
            assert paths_seen == {peer.expected[int(ident)]}
        assert peer.answer_types["TOO_MANY_REQUESTS"] > 0
        assert peer.pongs <= peer.pings
        kinds = Counter(incident.kind for incident in incidents)
        assert kinds[grestws.IncidentKind.POLICY_CLOSE] == 1
        assert kinds[grestws.IncidentKind.HANDLER_FAILED] == 0
        assert_bystander_unharmed(fuzz)
        await bystander_call(fuzz, 1)  # and it still works after the flood


# -- found by fuzzing --------------------------------------------------------------------------


@pytest.mark.logs_errors
@pytest.mark.xfail(
    strict=True,
    reason="grestws accepts an int input of 4300 digits but cannot encode a result over Python's "
    "4300-digit int-to-str limit: SERVER_ERROR and an ERROR log (handler_failed) for valid input",
)
async def test_a_valid_huge_int_is_answered_without_a_server_error(fuzz: Fuzz) -> None:
    async with ws_connect(fuzz.url, open_timeout=WAIT) as ws:
        peer = Peer(ws)
        await ws.send("h:::{}")
        await peer.wait_until(lambda: peer.accepted > 0, lambda: "no k:::null")
        await peer.send([Raw(b"r:RoomApi.double:1:" + b"9" * 4300)])
        await peer.settle()
        kinds = {incident.kind for incident in fuzz.incidents}
        assert grestws.IncidentKind.HANDLER_FAILED not in kinds
        peer.check()


async def test_k_comes_before_the_answers_to_frames_sent_right_after_h(fuzz: Fuzz) -> None:
    """Found by fuzzing (fixed since): frames sent with ``h``, before ``k`` came, were answered
    before ``k`` went out, where a client waiting for ``k`` drops them."""
    async with ws_connect(fuzz.url, open_timeout=WAIT) as ws:
        await ws.send("h:::{}")
        await ws.send("p:::")
        await ws.send("r:RoomApi.nope:1:")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
        assert await asyncio.wait_for(ws.recv(), WAIT) == "o:::"
        answer = await asyncio.wait_for(ws.recv(), WAIT)
        assert isinstance(answer, str)
        assert answer.startswith("s:RoomApi.nope:1:")


def test_the_oracle_follows_the_documented_rules() -> None:
    assert request_of(b"r:RoomApi.count:1:") == ("RoomApi.count", 1)
    assert request_of(b"r:" + b"p" * MAX_PATH + b":%d:x" % MAX_ID) == ("p" * MAX_PATH, MAX_ID)
    for bad in [
        b"r:RoomApi.count:0:",
        b"r:RoomApi.count:01:",
        b"r:RoomApi.count:%d:" % (MAX_ID + 1),
        b"r::1:",
        b"r:" + b"p" * (MAX_PATH + 1) + b":1:",
        b"r:\xff:1:",
        b"r:RoomApi.count:1",
        b"m:RoomApi.count:1:",
        "r:x:\u0661:".encode(),
    ]:
        assert request_of(bad) is None, bad
