"""The client: connecting, serving the server's calls, callbacks and concurrent calls.

Run from the repository root: ``python docs/examples/client.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import msgspec

import grestws

# -- The contract and a server to talk to ------------------------------------------------


class PriceUpdate(msgspec.Struct):
    symbol: str
    price: float


class PriceServer(Protocol):
    @grestws.request
    async def quote(self, symbol: str) -> float: ...

    @grestws.request
    async def subscribe(self, symbol: str) -> None: ...


class PriceClient(Protocol):
    @grestws.notify
    async def price(self, update: PriceUpdate) -> None: ...

    @grestws.notify
    async def news(self, headline: str) -> None: ...


PriceApi = grestws.SocketContract("PriceApi", client_to_server=PriceServer, server_to_client=PriceClient).at(
    "/ws/prices"
)

PRICES = {"ACME": 12.5, "INITECH": 3.25, "UMBRELLA": 99.0}


class PriceHandler(PriceServer):
    def __init__(self, conn: grestws.ServerConnection[PriceClient]) -> None:
        self.conn = conn

    async def quote(self, symbol: str) -> float:
        await asyncio.sleep(0.1)
        return PRICES[symbol]

    async def subscribe(self, symbol: str) -> None:
        for step in range(3):
            await self.conn.outgoing.price(PriceUpdate(symbol, PRICES[symbol] + step))
        await self.conn.outgoing.news(f"{symbol} moves")


app = grestws.App()
app.add(PriceApi, PriceHandler)

# -- The client side ---------------------------------------------------------------------


class Ticker(PriceClient):
    """Serves every call of the server_to_client half."""

    def __init__(self) -> None:
        self.prices: list[float] = []
        self.headlines: list[str] = []

    async def price(self, update: PriceUpdate) -> None:
        self.prices.append(update.price)

    async def news(self, headline: str) -> None:
        self.headlines.append(headline)


async def main() -> None:
    # The failing handler below is logged with its traceback; keep that out of this demo.
    logging.getLogger("grestws").setLevel(logging.CRITICAL)
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        # 1. Await connect(); disconnect() when done.
        client = await grestws.connect(server.url, PriceApi, timeout=5.0)
        print("ACME:", await client.outgoing.quote("ACME"))
        await client.disconnect()

        # 2. async with: disconnects on the way out. handlers= serves the server's calls.
        ticker = Ticker()
        async with grestws.connect(server.url, PriceApi, handlers=ticker) as client:
            await client.outgoing.subscribe("ACME")
            # Any number of tasks may call at once; responses are matched by id.
            prices = await asyncio.gather(*(client.outgoing.quote(symbol) for symbol in PRICES))
            assert prices == list(PRICES.values())
        assert ticker.prices == [12.5, 13.5, 14.5]
        assert ticker.headlines == ["ACME moves"]

        # 3. The Client class: on() for single methods, on_error() and on_close().
        updates: list[PriceUpdate] = []
        problems: list[grestws.GrestwsError] = []
        closes: list[int | None] = []

        client = grestws.Client(server.url, PriceApi, headers={"client": "docs"})

        @client.on(PriceClient.price)
        async def on_price(update: PriceUpdate) -> None:
            updates.append(update)

        async def on_news(headline: str) -> None:
            raise RuntimeError("the news handler failed")

        client.on(PriceClient.news)(on_news)
        client.on_error(problems.append)
        client.on_close(lambda code, reason: closes.append(code))
        async with client:
            print("state:", client.state)
            await client.outgoing.subscribe("INITECH")
        # Leaving the block disconnects, which first lets running handlers finish.
        print("updates:", [update.price for update in updates])
        print("reported:", problems)
        assert isinstance(problems[0], grestws.ServerError)
        assert closes == [1000]
        assert client.state is grestws.ClientState.CLOSED


if __name__ == "__main__":
    asyncio.run(main())
