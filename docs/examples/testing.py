"""Testing an App with grestws.testkit: a pytest module for the chat example, and a small
roll-call contract whose server calls its clients.

Run from the repository root: ``python docs/examples/testing.py``, or
``pytest docs/examples/testing.py``. The repository's pyproject.toml sets
``asyncio_mode = "auto"`` (pytest-asyncio), so the async tests need no marker.
"""

from __future__ import annotations

import asyncio
from typing import Protocol
from unittest.mock import ANY

import pytest

import grestws
from examples.chat.contract import ChatApi, DeleteMessageRequest, SendMessageRequest, SendMessageResponse
from examples.chat.server import app, auth
from grestws.testkit import ClientFactory, UnconsumedCallsError, call_on, expect, when


def say(text: str) -> SendMessageRequest:
    return SendMessageRequest(text=text, channel_id="general")


# -- Calls and pushes: the chat example in-process ---------------------------------------


async def test_a_message_reaches_everyone() -> None:
    async with (
        call_on(ChatApi, app, token="secret-ann", name="ann") as ann,
        call_on(ChatApi, app, token="secret-bob", name="bob") as bob,
    ):
        reply = await expect(ann.call.send_message(say("hello bob"))).to_match({"success": True})
        message = await expect(bob.mock.new_message).to_match({"text": "hello bob", "senderId": "ann"})
        assert message.id == reply.message_id
        # The room sends each message to its sender too.
        await expect(ann.mock.new_message).to_match({"id": reply.message_id})


async def test_only_an_admin_deletes_messages() -> None:
    async with (
        call_on(ChatApi, app, token="secret-ann", name="ann") as ann,
        call_on(ChatApi, app, token="secret-admin", name="admin") as admin,
    ):
        # Pushes this test does not check need no expectation.
        when(ann.mock.new_message).ignore()
        when(admin.mock.new_message).ignore()
        posted = await ann.call.send_message(say("regrettable"))
        delete = DeleteMessageRequest(message_id=posted.message_id)

        error = await expect(ann.call.delete_message(delete)).to_be_error(grestws.ForbiddenError)
        assert "chat:admin" in str(error)
        assert await expect(admin.call.delete_message(delete)).to_match(True)


async def test_an_empty_message_fails_validation() -> None:
    async with call_on(ChatApi, app, token="secret-ann", name="ann") as ann:
        error = await expect(ann.call.send_message(say(""))).to_fail_validation("text")
        assert error.data[0].code == "invalid_value"
        expect(ann.mock.new_message).not_to_be_called()


async def test_a_token_is_needed() -> None:
    with pytest.raises(grestws.NotAuthorizedError):
        await call_on(ChatApi, app).connect()


async def test_what_matches() -> None:
    async with call_on(ChatApi, app, token="secret-ann", name="ann") as ann:
        # A Struct: every field must match; ANY matches anything.
        await expect(ann.call.send_message(say("hi"))).to_match(
            SendMessageResponse(success=True, message_id=ANY)
        )
        # A class matches its instances.
        await expect(ann.mock.new_message).to_match({"id": str, "text": "hi", "timestamp": int})


async def test_calls_run_at_once_and_pushes_are_taken_in_any_order() -> None:
    async with (
        call_on(ChatApi, app, token="secret-ann", name="ann") as ann,
        call_on(ChatApi, app, token="secret-bob", name="bob") as bob,
    ):
        await asyncio.gather(
            expect(ann.call.send_message(say("one"))).to_match({"success": True}),
            expect(bob.call.send_message(say("two"))).to_match({"success": True}),
        )
        for text in ("two", "one"):
            await expect(ann.mock.new_message).to_match({"text": text})
            await expect(bob.mock.new_message).to_match({"text": text})


# -- Failures ----------------------------------------------------------------------------


async def test_a_push_nobody_checked_fails_at_disconnect() -> None:
    ann = call_on(ChatApi, app, token="secret-ann", name="ann")
    await ann.connect()
    await ann.call.send_message(say("is anyone there?"))
    with pytest.raises(UnconsumedCallsError, match=r"ann\.mock\.new_message"):
        await ann.disconnect()


async def test_a_failed_expectation_quotes_the_wire_log() -> None:
    async with call_on(ChatApi, app, token="secret-bob", name="bob", timeout=0.2) as bob:
        await bob.call.send_message(say("hello"))
        with pytest.raises(AssertionError) as failure:
            await expect(bob.mock.new_message).to_match({"text": "hi"})
        await expect(bob.mock.new_message).to_match({"text": "hello"})
    assert "$.text: expected 'hi', got 'hello'" in str(failure.value)
    assert "wire log of bob" in str(failure.value)


# -- The pytest fixtures -----------------------------------------------------------------


@pytest.fixture
def grestws_app() -> grestws.App:
    """The App that ``grestws_client`` connects to; usually in conftest.py."""
    return app


async def test_with_the_fixtures(grestws_client: ClientFactory) -> None:
    async with (
        grestws_client(ChatApi, token="secret-ann", name="ann") as ann,
        grestws_client(ChatApi, token="secret-bob", name="bob") as bob,
    ):
        await ann.call.send_message(say("hello"))
        await expect(ann.mock.new_message).to_match({"text": "hello"})
        await expect(bob.mock.new_message).to_match({"text": "hello"})


@pytest.fixture
def anyio_backend() -> str:
    """Under anyio's pytest plugin (tests marked ``@pytest.mark.anyio``): asyncio only."""
    return "asyncio"


# -- A real server, by URL ---------------------------------------------------------------


async def test_a_real_server() -> None:
    async with (
        grestws.serve(app, "127.0.0.1", 0) as server,
        call_on(ChatApi, server.url, token="secret-ann", name="ann") as ann,
    ):
        await expect(ann.call.send_message(say("over a socket"))).to_match({"success": True})
        await expect(ann.mock.new_message).to_match({"text": "over a socket"})


# -- A server that calls its clients: answers set with when() ----------------------------


class Away(grestws.ApiError, type="AWAY", status_code=409):
    """The user is not at the keyboard."""


class RollCallServer(Protocol):
    @grestws.request
    async def roll_call(self) -> list[str]:
        """Ask everyone connected whether they are there; the names of those who are."""
        ...


class RollCallClient(Protocol):
    @grestws.request(errors=[Away])
    async def are_you_there(self) -> bool: ...


RollCallApi = grestws.SocketContract(
    "RollCallApi", client_to_server=RollCallServer, server_to_client=RollCallClient
).at("/ws/roll-call")

members: set[grestws.ServerConnection[RollCallClient]] = set()


class RollCallHandler(RollCallServer):
    def __init__(self, conn: grestws.ServerConnection[RollCallClient]) -> None:
        members.add(conn)
        conn.on_close(lambda code, reason: members.discard(conn))

    async def roll_call(self) -> list[str]:
        async def there(member: grestws.ServerConnection[RollCallClient]) -> str | None:
            try:
                present = await member.with_timeout(1.0).are_you_there()
            except Away:
                return None
            return member.identity.id if present and member.identity is not None else None

        answers = await asyncio.gather(*(there(member) for member in list(members)))
        return sorted(name for name in answers if name is not None)


roll_call_app = grestws.App()
roll_call_app.add(RollCallApi.use(auth), RollCallHandler)


async def test_a_roll_call() -> None:
    async with (
        call_on(RollCallApi, roll_call_app, token="secret-ann", name="ann") as ann,
        call_on(RollCallApi, roll_call_app, token="secret-bob", name="bob") as bob,
        call_on(RollCallApi, roll_call_app, token="secret-cy", name="cy") as cy,
    ):
        when(ann.mock.are_you_there).reply(True)
        when(bob.mock.are_you_there).fail(Away("back in five"))
        when(cy.mock.are_you_there).reply(False)

        await expect(ann.call.roll_call()).to_match(["ann"])
        # Answered requests need no expectation; a test may still check them.
        await expect(bob.mock.are_you_there).to_be_called()


if __name__ == "__main__":
    # This script imported grestws before pytest started, so pytest cannot rewrite the
    # asserts of grestws (the package of its plugin): harmless, and no warning for it here.
    no_rewrite_warning = "ignore::pytest.PytestAssertRewriteWarning"
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider", "-W", no_rewrite_warning]))
