"""Subscriptions declared in the contract: ``@grestws.watch`` runs the server's typed access
check and subscribes, ``@grestws.unwatch`` and disconnecting end it; pushes reach the
watchers of a topic and key only."""

from __future__ import annotations

from typing import Protocol

import msgspec
import pytest

import grestws
from grestws.rooms import topic_room
from grestws.testkit import call_on, expect


class Change(msgspec.Struct):
    doc: str
    text: str


class DocServer(Protocol):
    @grestws.watch("document")
    async def watch_document(self, doc_id: str) -> None: ...

    @grestws.unwatch("document")
    async def unwatch_document(self, doc_id: str) -> None: ...

    @grestws.watch("device", name="watchDevice")
    async def watch_device(self, device: int) -> None: ...

    @grestws.request
    async def edit(self, change: Change) -> int: ...


class DocClient(Protocol):
    @grestws.notify
    async def changed(self, change: Change) -> None: ...


Docs = grestws.SocketContract("Docs", client_to_server=DocServer, server_to_client=DocClient, rename="camel")
DocsApi = Docs.at("/docs")


class Handler(DocServer):
    """Anyone may watch a document but the secret ones; the device watch is left out."""

    def __init__(self, conn: grestws.ServerConnection[DocClient]) -> None:
        self.conn = conn
        self.rooms = grestws.Rooms.of(conn)

    async def watch_document(self, doc_id: str) -> None:
        if doc_id.startswith("secret"):
            raise grestws.ForbiddenError(f"{doc_id} is not yours")

    async def edit(self, change: Change) -> int:
        return await self.rooms.send_to_topic("document", change.doc, DocClient.changed, change)


def docs_app() -> grestws.App:
    app = grestws.App()
    app.add(DocsApi, Handler)
    return app


async def test_an_allowed_watch_gets_the_pushes_of_its_key_only() -> None:
    app = docs_app()
    async with call_on(DocsApi, app, name="ann") as ann, call_on(DocsApi, app, name="bob") as bob:
        await ann.call.watch_document("d1")
        assert await bob.call.edit(Change("d1", "one")) == 1
        assert await expect(ann.mock.changed).to_match({"doc": "d1", "text": "one"}) == Change("d1", "one")
        assert await bob.call.edit(Change("d2", "elsewhere")) == 0
        assert len(app.rooms.watchers("document", "d1")) == 1
        expect(bob.mock.changed).not_to_be_called()


async def test_a_refused_watch_is_forbidden_and_subscribes_nothing() -> None:
    app = docs_app()
    async with call_on(DocsApi, app, name="ann") as ann, call_on(DocsApi, app, name="bob") as bob:
        error = await expect(ann.call.watch_document("secret-plan")).to_be_error(grestws.ForbiddenError)
        assert "not yours" in str(error)
        assert app.rooms.watchers("document", "secret-plan") == []
        assert await bob.call.edit(Change("secret-plan", "x")) == 0


async def test_unwatch_ends_it_even_without_a_server_method() -> None:
    app = docs_app()
    async with call_on(DocsApi, app, name="ann") as ann, call_on(DocsApi, app, name="bob") as bob:
        await ann.call.watch_document("d1")
        await ann.call.unwatch_document("d1")
        assert app.rooms.watchers("document", "d1") == []
        assert await bob.call.edit(Change("d1", "after")) == 0
        await ann.call.unwatch_document("never-watched")  # harmless


async def test_disconnecting_ends_every_subscription() -> None:
    app = docs_app()
    async with call_on(DocsApi, app, name="bob") as bob:
        async with call_on(DocsApi, app, name="ann") as ann:
            await ann.call.watch_document("d1")
            await ann.call.watch_document("d2")
            assert len(app.rooms.rooms_of(app.rooms.watchers("document", "d1")[0])) == 2
        assert app.rooms.watchers("document", "d1") == []
        assert app.rooms.watchers("document", "d2") == []
        assert await bob.call.edit(Change("d1", "after")) == 0


async def test_a_watch_the_handler_does_not_implement_is_not_found() -> None:
    app = docs_app()
    async with call_on(DocsApi, app) as client:
        await expect(client.call.watch_device(7)).to_be_error(grestws.RouteNotFoundError)
        assert app.rooms.sizes() == {}


def test_keys_of_different_types_name_different_rooms() -> None:
    assert topic_room("device", 7) != topic_room("device", "7")
    assert topic_room("document", "d1") == 'topic:document:"d1"'


def test_the_wire_sees_ordinary_requests() -> None:
    spec = Docs.client_to_server.methods["watch_document"]
    assert spec.path == "Docs.watchDocument"
    assert spec.kind is grestws.contract.MethodKind.REQUEST
    assert (spec.topic, spec.watching) == ("document", True)
    assert Docs.client_to_server.methods["unwatch_document"].watching is False


def test_a_watch_stub_takes_the_key_and_returns_none() -> None:
    class NoKey(Protocol):
        @grestws.watch("document")
        async def watch(self) -> None: ...

    class Returns(Protocol):
        @grestws.watch("document")
        async def watch(self, doc_id: str) -> bool: ...

    for half in (NoKey, Returns):
        with pytest.raises(grestws.ContractError, match="topic's key"):
            grestws.SocketContract("Bad", client_to_server=half, server_to_client=DocClient)
    with pytest.raises(grestws.ContractError, match="topic"):
        grestws.watch("a:b")
