"""A chat client: ``python -m examples.chat.client [--serve] [--token T] [URL] [TEXT ...]``.

Connects to the chat server (``ws://127.0.0.1:8765`` by default) as the user of the bearer
token (``secret-guest`` by default: the demo server takes ``secret-<name>`` as user
``<name>``), sends each TEXT as a message, prints what the server pushes, shows what the
server refuses, and leaves. With ``--serve`` it first starts
``grestws serve examples.chat.server:app`` on a free port, and stops it at the end.
URL may be the server's base URL or the full one it logs (``ws://127.0.0.1:8765/ws/chat``).

Exit codes: 0 done; 1 the server could not be reached or refused the connection (one
line on stderr says why); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncGenerator

import grestws
from examples.chat.contract import (
    ChatApi,
    ChatClient,
    DeleteMessageRequest,
    Message,
    ReadOnlyChannel,
    SendMessageRequest,
    TypingEvent,
    WhoIsHereRequest,
)


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


async def chat(url: str, texts: list[str], token: str) -> None:
    """Send ``texts`` to the chat server at ``url`` and show what comes back."""
    printer = Printer()
    schema = ChatApi.use(grestws.BearerAuth(token))
    async with grestws.connect(url, schema, handlers=printer) as client:
        print(f"connected to {client.url}")
        for text in texts:
            reply = await client.outgoing.send_message(SendMessageRequest(text=text, channel_id="general"))
            print(f"sent {reply.message_id}")
            await asyncio.wait_for(printer.received.get(), timeout=5)
        try:
            await client.outgoing.send_message(SendMessageRequest(text="", channel_id="general"))
        except grestws.ValidationError as exc:
            issue = exc.data[0]
            print(f"an empty message is refused: {issue.path}: {issue.message}")
        try:
            await client.outgoing.send_message(SendMessageRequest(text="hear ye", channel_id="announcements"))
            print("posted in announcements")
        except ReadOnlyChannel as exc:
            print(f"only {', '.join(exc.data.posters)} may post in {exc.data.channel_id}: {exc}")
        here = await client.outgoing.who_is_here(WhoIsHereRequest(channel_id="general"))
        print(f"in general: {', '.join(here)}")
        match await grestws.as_result(client.outgoing.delete_message(DeleteMessageRequest("x"))):
            case grestws.Ok(deleted):
                print(f"deleting as an admin: {'deleted' if deleted else 'no such message'}")
            case grestws.Err(error):
                print(f"deleting needs chat:admin: {error}")
    try:
        await grestws.connect(url, ChatApi.use(grestws.BearerAuth("forged")))
    except grestws.NotAuthorizedError as exc:
        print(f"a forged token is refused at the handshake: {exc}")


_LISTENING = re.compile(r"listening on (ws://\S+?)/ws/chat")


@contextlib.asynccontextmanager
async def chat_server() -> AsyncGenerator[str]:
    """Run ``grestws serve examples.chat.server:app`` on a free port; yield its base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "grestws", "serve", "examples.chat.server:app", "--port", "0"),
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(15):
            while line := (await process.stderr.readline()).decode():
                sys.stderr.write(line)
                if match := _LISTENING.search(line):
                    break
            else:
                raise RuntimeError("the chat server exited before listening")
        yield match.group(1)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stderr.read(), 15)
        sys.stderr.write(rest.decode())
        await process.wait()


DEFAULT_URL = "ws://127.0.0.1:8765"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line: ``--serve``, ``--token T``, an optional URL, then the texts."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.chat.client",
        description="Send messages to the grestws chat example and show what comes back.",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="start 'grestws serve examples.chat.server:app' on a free port first (URL is ignored)",
    )
    parser.add_argument(
        "--token",
        default="secret-guest",
        help="bearer token; the demo server takes secret-NAME as user NAME (default secret-guest)",
    )
    parser.add_argument(
        "url",
        nargs="?",
        metavar="URL",
        help=f"the server, ws:// or wss:// (default {DEFAULT_URL}); anything else is the first TEXT",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="messages to send (default: a greeting)")
    args = parser.parse_args(argv)
    if args.url is not None and not args.url.startswith(("ws://", "wss://")):
        args.texts.insert(0, args.url)
        args.url = None
    args.url = args.url or DEFAULT_URL
    args.texts = args.texts or ["Hello from grestws!"]
    return args


async def main(argv: list[str]) -> int:
    """Run the client; the exit code."""
    args = parse_args(argv)
    try:
        if args.serve:
            async with chat_server() as url:
                await chat(url, args.texts, args.token)
        else:
            await chat(args.url, args.texts, args.token)
    except (grestws.ConnectError, grestws.HandshakeTimeoutError, grestws.ConnectionClosedError) as exc:
        print(f"cannot reach the chat server: {exc}", file=sys.stderr)
        return 1
    except grestws.NotAuthorizedError as exc:
        print(f"the chat server refused the token: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
