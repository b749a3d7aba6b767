"""A chat client: ``python -m examples.chat.client [URL] [TEXT ...]``.

Connects to the chat server (``ws://127.0.0.1:8765`` by default), sends each TEXT as a
message, prints what the server pushes, and leaves.
"""

from __future__ import annotations

import asyncio
import sys

import grestws
from examples.chat.contract import ChatApi, ChatClient, Message, SendMessageRequest, TypingEvent


class Printer(ChatClient):
    """Shows what the server pushes."""

    def __init__(self) -> None:
        self.received = asyncio.Queue[Message]()

    async def new_message(self, msg: Message) -> None:
        print(f"[{msg.sender_id[:8]}] {msg.text}")
        self.received.put_nowait(msg)

    async def typing(self, event: TypingEvent) -> None:
        print(f"{event.user_id[:8]} is typing in {event.channel_id}")

    async def are_you_there(self) -> bool:
        return True


async def main(url: str, texts: list[str]) -> None:
    printer = Printer()
    async with grestws.connect(url, ChatApi, handlers=printer) as client:
        print(f"connected to {client.url}")
        for text in texts:
            reply = await client.outgoing.send_message(SendMessageRequest(text=text, channel_id="general"))
            print(f"sent {reply.message_id}")
            await asyncio.wait_for(printer.received.get(), timeout=5)
        try:
            await client.outgoing.send_message(SendMessageRequest(text="", channel_id="general"))
        except grestws.ValidationError as exc:
            print(f"an empty message is refused: {exc.data[0].path}: {exc.data[0].message}")


if __name__ == "__main__":
    args = sys.argv[1:]
    url = args.pop(0) if args and args[0].startswith("ws") else "ws://127.0.0.1:8765"
    asyncio.run(main(url, args or ["Hello from grestws!"]))
