"""Mistakes with the reconnecting client and the pool that the checkers must catch.

Each line with a mistake ends with the errors both checkers must report, as described in
``test_typing.py``. The functions are never called; importing the module runs nothing.
"""

from __future__ import annotations

import grestws
from examples.chat.contract import ChatApi, ChatServer, SendMessageRequest


async def wrong_setup(link: str) -> None: ...


async def mistakes() -> None:
    grestws.Client("ws://127.0.0.1:8765", ChatApi, setup=wrong_setup)  # E: arg-type reportArgumentType
    grestws.Client("ws://127.0.0.1:8765", ChatApi, reconnect=3)  # E: arg-type reportArgumentType
    grestws.Reconnect(max_attempts="5")  # E: arg-type reportArgumentType
    async with grestws.ClientPool() as pool:
        shared = await pool.acquire("ws://127.0.0.1:8765", ChatApi)
        await shared.outgoing.send_message("hi")  # E: arg-type reportArgumentType
        await shared.outgoing.send_messages(SendMessageRequest(text="x", channel_id="y"))  # E: attr-defined reportAttributeAccessIssue reportUnknownMemberType
        server_side: ChatServer = await pool.acquire("ws://127.0.0.1:8765", ChatApi)  # E: assignment reportAssignmentType
        del server_side
