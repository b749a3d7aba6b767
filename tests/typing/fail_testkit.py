"""Mistakes in tests written with :mod:`grestws.testkit` that the checkers must catch.
See ``test_typing.py``.
"""

from __future__ import annotations

from examples.chat.contract import ChatApi, MarkAsReadRequest, SendMessageRequest
from examples.chat.server import app
from grestws.testkit import call_on, expect, when

REQ = SendMessageRequest(text="hi", channel_id="general")


async def mistakes() -> None:
    ann = call_on(ChatApi, app)
    await ann.call.send_message(MarkAsReadRequest(message_id="1"))  # E: arg-type reportArgumentType
    await ann.call.send_mesage(REQ)  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
    await expect(ann.mock.new_mesage).to_be_called()  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType reportUnknownArgumentType
    when(ann.mock.are_you_there).reply("yes")  # E: arg-type reportArgumentType
    await expect(ann.call.send_message(REQ)).to_be_error(ValueError)  # E: type-var reportArgumentType
    ann.call.send_message(REQ).to_match({})  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
