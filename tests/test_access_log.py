"""The access log (:class:`grestws.AccessLog`): one line per call over real sockets, its
fields on the record, the ref of a failed handler, and nothing when it is off."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import grestws
from examples.chat.contract import ChatApi, ReadOnlyChannel, SendMessageRequest
from examples.chat.server import ChatHandler, ServerChatApi
from grestws.access_log import ACCESS_LOGGER
from tests.conftest import StartServer
from tests.support import Hub, Note, Question, RoomApi, RoomClientHandler, room_app


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "grestws.access"]


def fields(record: logging.LogRecord) -> dict[str, Any]:
    found: dict[str, Any] = record.__dict__["grestws"]
    return found


async def test_one_line_per_call(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "grestws.access")
    app = grestws.App(interceptors=[grestws.AccessLog()])
    app.add(ServerChatApi, ChatHandler)
    server = await start_server(app)
    async with grestws.connect(server.url, ChatApi.use(grestws.BearerAuth("secret-ann"))) as client:
        await client.outgoing.send_message(SendMessageRequest(text="hi", channel_id="general"))
        with pytest.raises(ReadOnlyChannel):
            await client.outgoing.send_message(SendMessageRequest(text="hi", channel_id="announcements"))
        await client.outgoing.ping()
        conn_id = next(iter(server.app.connections)).id
    records = lines(caplog)
    assert [fields(record)["result"] for record in records] == ["OK", "READ_ONLY_CHANNEL", "OK"]
    first = fields(records[0])
    assert first["side"] == "server"
    assert first["direction"] == "incoming"
    assert first["connection"] == conn_id
    assert first["user"] == "ann"
    assert first["method"] == "ChatApi.sendMessage"
    assert first["kind"] == "request"
    assert isinstance(first["request_id"], int)
    assert first["duration_ms"] >= 0
    assert first["ref"] is None
    assert records[0].getMessage().startswith(f"conn={conn_id} user=ann in ChatApi.sendMessage request id=")
    assert records[0].getMessage().endswith("ms")
    assert " OK " in records[0].getMessage()
    assert fields(records[2])["kind"] == "notify"
    assert fields(records[2])["request_id"] is None
    assert "hi" not in "".join(record.getMessage() for record in records)  # no payload


@pytest.mark.logs_errors
async def test_a_failed_handler_carries_the_ref_the_client_got(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "grestws.access")
    server = await start_server(room_app(Hub(), interceptors=[grestws.AccessLog()]))
    async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
        with pytest.raises(grestws.ServerError) as caught:
            await client.outgoing.post(Note(text="x", room_id="crash"))
    (record,) = lines(caplog)
    assert fields(record)["result"] == "SERVER_ERROR"
    assert caught.value.ref is not None
    assert fields(record)["ref"] == caught.value.ref
    assert f"ref={caught.value.ref}" in record.getMessage()
    handler_failed = [r for r in caplog.records if r.name == "grestws" and "handler failed" in r.getMessage()]
    assert caught.value.ref in handler_failed[0].getMessage()


async def test_the_calls_both_ways_on_a_client(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "grestws.access")
    server = await start_server(room_app(Hub()))
    async with grestws.connect(
        server.url, RoomApi, handlers=RoomClientHandler(), reconnect=False, interceptors=[grestws.AccessLog()]
    ) as client:
        await client.outgoing.ask_client(Question(text="yes?"))
    assert [(fields(r)["direction"], fields(r)["method"], fields(r)["side"]) for r in lines(caplog)] == [
        ("incoming", "RoomApi.answer", "client"),
        ("outgoing", "RoomApi.askClient", "client"),
    ]
    assert lines(caplog)[1].getMessage().startswith(f"conn={client.id} out RoomApi.askClient request ")


async def test_off_when_its_logger_is(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "grestws.access")
    assert not ACCESS_LOGGER.isEnabledFor(logging.INFO)
    server = await start_server(room_app(Hub(), interceptors=[grestws.AccessLog()]))
    async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
        assert await client.outgoing.double(2) == 4
    assert lines(caplog) == []
