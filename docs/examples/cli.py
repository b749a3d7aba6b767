"""``grestws serve``: run an App from the command line, find its port, stop it with a signal.

Run from the repository root: ``python docs/examples/cli.py``. It starts
``python -m grestws serve cli:app --port 0`` in this directory, talks to it, and stops it
with SIGINT (a POSIX signal: this example does not run on Windows).
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path
from typing import Protocol

import grestws

# -- What `grestws serve cli:app` imports ------------------------------------------------


class EchoServer(Protocol):
    @grestws.request
    async def echo(self, text: str) -> str: ...


class NoCalls(Protocol):
    pass


EchoApi = grestws.SocketContract("EchoApi", client_to_server=EchoServer, server_to_client=NoCalls).at(
    "/ws/echo"
)


class EchoHandler(EchoServer):
    def __init__(self, conn: grestws.ServerConnection[NoCalls]) -> None:
        pass

    async def echo(self, text: str) -> str:
        return text


app = grestws.App(shutdown_timeout=5.0)
app.add(EchoApi, EchoHandler)

# -- Running it --------------------------------------------------------------------------

LISTENING = re.compile(r"listening on (ws://\S+)/ws/echo")


async def main() -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "grestws", "serve", "cli:app", "--port", "0", "--log-level", "info"),
        cwd=Path(__file__).parent,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(15):
            while True:
                line = (await process.stderr.readline()).decode()
                if not line:
                    raise RuntimeError("grestws serve exited before listening")
                if found := LISTENING.search(line):
                    break
        url = found.group(1)
        print("the server logged its URL:", url)

        async with grestws.connect(url, EchoApi) as client:
            assert await client.outgoing.echo("hello") == "hello"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)  # graceful shutdown, as on Ctrl-C
        rest = await asyncio.wait_for(process.stderr.read(), 15)
        await process.wait()
    print("after SIGINT:", rest.decode().strip().splitlines()[-1])
    print("exit code:", process.returncode)
    assert process.returncode == 0


if __name__ == "__main__":
    asyncio.run(main())
