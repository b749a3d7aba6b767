"""The chat example, tested with grestws's testkit: every test runs in this process over
an in-memory transport, with the server's own handshake, validation and permissions.

Run them with ``pytest examples/chat``.
"""

from __future__ import annotations

import pytest

import grestws
from examples.chat import server
from examples.chat.contract import (
    ChannelInfo,
    ChatApi,
    DeleteMessageRequest,
    MarkAsReadRequest,
    ReadOnlyChannel,
    SendMessageRequest,
    TypingRequest,
    WhoIsHereRequest,
)
from grestws.testkit import ClientFactory, call_on, expect, when


def say(text: str, channel: str = "general") -> SendMessageRequest:
    return SendMessageRequest(text=text, channel_id=channel)


async def test_a_message_reaches_everyone_with_its_sender(grestws_client: ClientFactory) -> None:
    ann = grestws_client(ChatApi, token="secret-ann", name="ann")
    bob = grestws_client(ChatApi, token="secret-bob", name="bob")
    async with ann, bob:
        reply = await expect(ann.call.send_message(say("hello bob"))).to_match({"success": True})
        pushed = await expect(bob.mock.new_message).to_match({"text": "hello bob", "senderId": "ann"})
        assert pushed.id == reply.message_id
        await expect(ann.mock.new_message).to_match({"id": reply.message_id})

        await expect(bob.call.send_message(say("hi ann"))).to_match({"success": True})
        await expect(ann.mock.new_message).to_match({"text": "hi ann", "sender_id": "bob"})
        await expect(bob.mock.new_message).to_be_called()


async def test_an_empty_message_is_refused_with_the_field_at_fault() -> None:
    async with call_on(ChatApi, server.app, token="secret-ann") as ann:
        error = await expect(ann.call.send_message(say(""))).to_fail_validation("text")
        assert error.data[0].code == "invalid_value"
        expect(ann.mock.new_message).not_to_be_called()


async def test_only_an_admin_deletes_messages(grestws_client: ClientFactory) -> None:
    async with (
        grestws_client(ChatApi, token="secret-ann") as ann,
        grestws_client(ChatApi, token="secret-admin") as admin,
    ):
        posted = await ann.call.send_message(say("regrettable"))
        await expect(ann.mock.new_message).to_match({"text": "regrettable"})
        await expect(admin.mock.new_message).to_match({"text": "regrettable"})

        refused = await expect(ann.call.delete_message(DeleteMessageRequest(posted.message_id))).to_be_error(
            grestws.ForbiddenError
        )
        assert "chat:admin" in str(refused)
        assert await expect(admin.call.delete_message(DeleteMessageRequest(posted.message_id))).to_match(True)
        assert not await admin.call.delete_message(DeleteMessageRequest(posted.message_id))


async def test_only_an_admin_posts_in_announcements(grestws_client: ClientFactory) -> None:
    async with (
        grestws_client(ChatApi, token="secret-ann") as ann,
        grestws_client(ChatApi, token="secret-admin") as admin,
    ):
        refused = await expect(ann.call.send_message(say("hear ye", "announcements"))).to_be_error(
            ReadOnlyChannel
        )
        assert refused.data == ChannelInfo(channel_id="announcements", posters=["admin"])
        assert refused.status_code == 403

        await expect(admin.call.send_message(say("hear ye", "announcements"))).to_match({"success": True})
        await expect(ann.mock.new_message).to_match({"text": "hear ye", "senderId": "admin"})
        await expect(admin.mock.new_message).to_match({"text": "hear ye"})


async def test_who_is_here_asks_everyone_in_the_channel(grestws_client: ClientFactory) -> None:
    ann = grestws_client(ChatApi, token="secret-ann", name="ann")
    bob = grestws_client(ChatApi, token="secret-bob", name="bob")
    cid = grestws_client(ChatApi, token="secret-cid", name="cid")
    dan = grestws_client(ChatApi, token="secret-dan", name="dan")
    when(ann.mock.are_you_there).reply(True)
    when(bob.mock.are_you_there).reply(True)
    when(cid.mock.are_you_there).reply(False)
    when(dan.mock.are_you_there).ignore()  # answers ROUTE_NOT_FOUND
    async with ann, bob, cid, dan:
        assert await ann.call.who_is_here(WhoIsHereRequest(channel_id="general")) == ["ann", "bob"]
        assert await bob.call.who_is_here(WhoIsHereRequest(channel_id="random")) == ["bob"]
        await expect(cid.call.who_is_here(WhoIsHereRequest(channel_id="random"))).to_match(["bob"])


async def test_a_token_is_needed_and_checked(grestws_client: ClientFactory) -> None:
    with pytest.raises(grestws.NotAuthorizedError):
        await grestws_client(ChatApi).connect()
    with pytest.raises(grestws.NotAuthorizedError):
        await grestws_client(ChatApi, token="forged").connect()


async def test_fire_and_forget_calls_and_leaving(grestws_client: ClientFactory) -> None:
    async with grestws_client(ChatApi, token="secret-ann") as ann:
        await ann.call.mark_as_read(MarkAsReadRequest(message_id="m1"))
        await ann.call.ping()
        assert await server.app.rooms.users("channel:general") == ["ann"]
    assert await server.app.rooms.users("channel:general") == []


async def test_typing_reaches_the_others_in_the_channel_not_the_sender(grestws_client: ClientFactory) -> None:
    ann = grestws_client(ChatApi, token="secret-ann", name="ann")
    bob = grestws_client(ChatApi, token="secret-bob", name="bob")
    cid = grestws_client(ChatApi, token="secret-cid", name="cid")
    async with ann, bob, cid:
        await cid.call.is_typing(TypingRequest(channel_id="random"))  # cid is in "random" too
        await ann.call.is_typing(TypingRequest(channel_id="general"))
        await expect(bob.mock.typing).to_match({"userId": "ann", "channelId": "general"})
        await expect(cid.mock.typing).to_match({"userId": "ann", "channelId": "general"})

        await bob.call.is_typing(TypingRequest(channel_id="random"))  # only cid was there before
        await expect(cid.mock.typing).to_match({"userId": "bob", "channelId": "random"})
        # a round trip: whatever the server sent ann before its answer has arrived
        await expect(ann.call.delete_message(DeleteMessageRequest("x"))).to_be_error(grestws.ForbiddenError)
        expect(ann.mock.typing).not_to_be_called()


async def test_the_latest_messages_are_kept_for_the_http_route(grestws_client: ClientFactory) -> None:
    async with grestws_client(ChatApi, token="secret-ann") as ann:
        reply = await ann.call.send_message(say("kept"))
        await expect(ann.mock.new_message).to_be_called()
    assert server.latest_messages()[-1].id == reply.message_id
