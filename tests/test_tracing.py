"""OpenTelemetry spans (:mod:`grestws.tracing`) over real sockets, collected by the SDK's
in-memory exporter: the client's and the server's span of one call in one trace, with the
RPC attributes; error spans; the calls a handler makes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import grestws
from examples.chat.contract import ChatApi, ReadOnlyChannel, SendMessageRequest, WhoIsHereRequest
from examples.chat.server import ChatHandler, ServerChatApi
from grestws.tracing import Tracing
from tests.conftest import StartServer
from tests.support import ChatInbox, Hub, Note, Question, RoomApi, RoomClientHandler, room_app


class Traced:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = Tracing(self.provider)
        self.tracer = self.provider.get_tracer("tests")

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [span for span in self.exporter.get_finished_spans() if name is None or span.name == name]

    def one(self, name: str, kind: SpanKind) -> ReadableSpan:
        (span,) = [span for span in self.spans(name) if span.kind is kind]
        return span


@pytest.fixture
def traced() -> Iterator[Traced]:
    found = Traced()
    yield found
    found.provider.shutdown()


def chat_app(tracing: Tracing) -> grestws.App:
    app = grestws.App()
    app.add(ServerChatApi, ChatHandler)
    return tracing.instrument(app)


async def test_one_call_is_one_trace(start_server: StartServer, traced: Traced) -> None:
    server = await start_server(chat_app(traced.tracing))
    with traced.tracer.start_as_current_span("session") as session:
        schema = ChatApi.use(grestws.BearerAuth("secret-ann")).use(traced.tracing.propagation())
        async with grestws.connect(
            server.url, schema, handlers=ChatInbox(), interceptors=[traced.tracing.intercept]
        ) as client:
            await client.outgoing.send_message(SendMessageRequest(text="hi", channel_id="general"))
    client_span = traced.one("ChatApi/sendMessage", SpanKind.CLIENT)
    server_span = traced.one("ChatApi/sendMessage", SpanKind.SERVER)
    trace_id = session.get_span_context().trace_id
    assert client_span.context is not None
    assert server_span.context is not None
    assert client_span.context.trace_id == server_span.context.trace_id == trace_id
    assert client_span.parent is not None
    assert client_span.parent.span_id == session.get_span_context().span_id
    assert server_span.parent is not None
    assert server_span.parent.span_id == session.get_span_context().span_id
    assert server_span.parent.is_remote
    for span in (client_span, server_span):
        assert span.status.status_code is StatusCode.UNSET
        attributes = dict(span.attributes or {})
        assert attributes["rpc.system"] == "grestws"
        assert attributes["rpc.service"] == "ChatApi"
        assert attributes["rpc.method"] == "sendMessage"
        assert len(str(attributes["grestws.connection.id"])) == 32
        assert "error.type" not in attributes
    server_attributes = dict(server_span.attributes or {})
    assert isinstance(server_attributes["grestws.request_id"], int)
    assert server_attributes["network.peer.address"] == "127.0.0.1"
    assert isinstance(server_attributes["network.peer.port"], int)
    # the push the handler sent through app.rooms is no call of one connection: the server
    # makes no span of it; the client's handler of it is one
    assert [span.kind for span in traced.spans("ChatApi/newMessage")] == [SpanKind.CONSUMER]


async def test_a_declared_error_is_an_error_span(start_server: StartServer, traced: Traced) -> None:
    server = await start_server(chat_app(traced.tracing))
    with traced.tracer.start_as_current_span("session"):
        schema = ChatApi.use(grestws.BearerAuth("secret-ann")).use(traced.tracing.propagation())
        async with grestws.connect(server.url, schema, interceptors=[traced.tracing.intercept]) as client:
            with pytest.raises(ReadOnlyChannel):
                await client.outgoing.send_message(SendMessageRequest(text="hi", channel_id="announcements"))
    for kind in (SpanKind.CLIENT, SpanKind.SERVER):
        span = traced.one("ChatApi/sendMessage", kind)
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "READ_ONLY_CHANNEL"
        assert dict(span.attributes or {})["error.type"] == "READ_ONLY_CHANNEL"
        assert not span.events  # an ApiError is an answer, not an exception to record


@pytest.mark.logs_errors
async def test_a_crash_records_the_exception(start_server: StartServer, traced: Traced) -> None:
    server = await start_server(traced.tracing.instrument(room_app(Hub())))
    async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
        with pytest.raises(grestws.ServerError):
            await client.outgoing.post(Note(text="x", room_id="crash"))
    span = traced.one("RoomApi/post", SpanKind.SERVER)
    assert dict(span.attributes or {})["error.type"] == "SERVER_ERROR"
    (event,) = span.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"] == "RuntimeError"


async def test_a_call_the_handler_makes_is_a_child(start_server: StartServer, traced: Traced) -> None:
    server = await start_server(traced.tracing.instrument(room_app(Hub())))
    async with grestws.connect(server.url, RoomApi, handlers=RoomClientHandler(), reconnect=False) as client:
        assert await client.outgoing.ask_client(Question(text="yes?")) == "YES?"
        await client.outgoing.poke()
        (conn,) = server.app.connections
        await conn.outgoing.tick()
    ask = traced.one("RoomApi/askClient", SpanKind.SERVER)
    answer = traced.one("RoomApi/answer", SpanKind.CLIENT)
    assert ask.context is not None
    assert answer.parent is not None
    assert answer.parent.span_id == ask.context.span_id
    assert answer.context is not None
    assert answer.context.trace_id == ask.context.trace_id
    assert traced.one("RoomApi/poke", SpanKind.CONSUMER).status.status_code is StatusCode.UNSET
    assert traced.one("RoomApi/tick", SpanKind.PRODUCER).status.status_code is StatusCode.UNSET
    assert "grestws.request_id" not in dict(traced.one("RoomApi/poke", SpanKind.CONSUMER).attributes or {})


async def test_without_a_trace_context_the_server_starts_a_trace(
    start_server: StartServer, traced: Traced
) -> None:
    server = await start_server(chat_app(traced.tracing))
    async with grestws.connect(server.url, ChatApi.use(grestws.BearerAuth("secret-ann"))) as client:
        await client.outgoing.who_is_here(WhoIsHereRequest(channel_id="general"))
    span = traced.one("ChatApi/whoIsHere", SpanKind.SERVER)
    assert span.parent is None
    # the server asked the client areYouThere inside it: a child, in its trace
    there = traced.one("ChatApi/areYouThere", SpanKind.CLIENT)
    assert there.parent is not None
    assert span.context is not None
    assert there.parent.span_id == span.context.span_id
