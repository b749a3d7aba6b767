"""What the checkers infer for the reconnecting client, its callbacks and the pool.

Each ``reveal_type`` line ends with the type both checkers must print, as described in
``test_typing.py``. The functions are never called; importing the module runs nothing.
"""

from __future__ import annotations

from typing import reveal_type

import grestws
from examples.chat.contract import ChatApi, ChatClient, ChatServer, SendMessageRequest

REQ = SendMessageRequest(text="hi", channel_id="general")


async def setup(link: grestws.LinkInfo) -> None:
    reveal_type(link.recovered)  # R: bool | None
    reveal_type(link.reconnect)  # R: bool


async def token() -> dict[str, str]:
    return {"authorization": "Bearer secret-ann"}


async def reconnecting() -> None:
    policy = grestws.Reconnect(initial_delay=0.1, max_delay=5.0, max_attempts=10)
    client = grestws.Client(
        ["ws://127.0.0.1:8765", "ws://127.0.0.1:8766"],
        ChatApi,
        headers=token,
        reconnect=policy,
        setup=setup,
        recover=True,
    )
    reveal_type(client)  # R: Client[ChatServer, ChatClient]
    reveal_type(client.reconnect)  # R: Reconnect | None
    reveal_type(client.close_cause)  # R: CloseCause | None
    client.on_drop(lambda drop: reveal_type(drop))  # R: Drop
    reveal_type(client.on_setup(setup))  # R: (LinkInfo) -> Awaitable[object]
    await client.force_reconnect()
    opened = await grestws.connect("ws://127.0.0.1:8765", ChatApi, reconnect=False, wait_for_connection=False)
    reveal_type(opened)  # R: Client[ChatServer, ChatClient]


async def lost(client: grestws.Client[ChatServer, ChatClient]) -> None:
    try:
        await client.outgoing.send_message(REQ)
    except grestws.ConnectionLostError as exc:
        reveal_type(exc.code)  # R: int | None
    except grestws.UnavailableError as exc:
        reveal_type(exc.data)  # R: None


async def pooled() -> None:
    async with grestws.ClientPool(idle_timeout=5.0, timeout=10.0) as pool:
        shared = await pool.acquire("ws://127.0.0.1:8765", ChatApi, headers={"authorization": "Bearer t"})
        reveal_type(shared)  # R: Client[ChatServer, ChatClient]
        reveal_type(await shared.outgoing.send_message(REQ))  # R: SendMessageResponse
        await pool.release(shared)
        async with pool.get("ws://127.0.0.1:8765", ChatApi) as entered:
            reveal_type(entered)  # R: Client[ChatServer, ChatClient]
        reveal_type(pool.size)  # R: int
