"""What the checkers infer for a small contract of varied shapes, declared here.

``ShopServer`` inherits a method from another Protocol, and its methods take and return
containers, optionals and nothing; ``ShopClient.confirm`` takes its argument positional-only,
so handlers may name it as they like. Each ``reveal_type`` line ends with the type both
checkers must print, as described in ``test_typing.py``.
"""

from __future__ import annotations

from typing import Protocol, reveal_type

import msgspec

import grestws


class Item(msgspec.Struct):
    sku: str
    count: int


class StockInfo(msgspec.Struct):
    sku: str
    available: int


class OutOfStock(grestws.ApiError[StockInfo], type="OUT_OF_STOCK", status_code=409):
    """Fewer items are in stock than were asked for."""


class ShopClosed(grestws.ApiError, type="SHOP_CLOSED", status_code=503):
    """The shop takes no orders now."""


class Versioned(Protocol):
    @grestws.request
    async def version(self) -> str: ...


class ShopServer(Versioned, Protocol):
    @grestws.request(name="list", errors=[ShopClosed])
    async def list_items(self) -> list[Item]: ...

    @grestws.request(errors=[OutOfStock, ShopClosed])
    async def reserve(self, item: Item) -> dict[str, int]: ...

    @grestws.request
    async def find(self, sku: str) -> Item | None: ...

    @grestws.notify(name="bye")
    async def leave(self) -> None: ...


class ShopClient(Protocol):
    @grestws.request
    async def confirm(self, question: str, /) -> bool: ...

    @grestws.notify
    async def restocked(self, items: list[Item]) -> None: ...


ShopContract = grestws.SocketContract("Shop", client_to_server=ShopServer, server_to_client=ShopClient)
ShopApi = ShopContract.at("/ws/shop")

ITEM = Item(sku="tea", count=2)


class ShopQuery(msgspec.Struct):
    branch: str
    page: int = 1


ShopByBranch = ShopContract.at("/ws/shop-branch", query=ShopQuery)


async def with_query(conn: grestws.ServerConnection[ShopClient]) -> None:
    reveal_type(ShopByBranch)  # R: SocketSchema[ShopServer, ShopClient, ShopQuery]
    reveal_type(ShopByBranch.use(grestws.Middleware()))  # R: SocketSchema[ShopServer, ShopClient, ShopQuery]
    reveal_type(ShopByBranch.query_of(conn))  # R: ShopQuery
    reveal_type(ShopByBranch.query_of(conn).page)  # R: int
    async with grestws.connect("ws://127.0.0.1:8765", ShopByBranch, query=ShopQuery("north")) as client:
        reveal_type(client)  # R: Client[ShopServer, ShopClient]


async def declared() -> None:
    reveal_type(ShopContract)  # R: SocketContract[ShopServer, ShopClient]
    reveal_type(ShopApi)  # R: SocketSchema[ShopServer, ShopClient, None]
    reveal_type(ShopApi.contract)  # R: SocketContract[ShopServer, ShopClient]
    reveal_type(ShopServer.find)  # R: (self: ShopServer, sku: str) -> Coroutine[Any, Any, Item | None]
    reveal_type(OutOfStock.type)  # R: str
    reveal_type(OutOfStock.status_code)  # R: int


async def client_calls() -> None:
    async with grestws.connect("ws://127.0.0.1:8765", ShopApi, timeout=2.0) as client:
        reveal_type(client)  # R: Client[ShopServer, ShopClient]
        reveal_type(client.outgoing)  # R: ShopServer
        reveal_type(await client.outgoing.version())  # R: str
        reveal_type(await client.outgoing.list_items())  # R: list[Item]
        reveal_type(await client.outgoing.reserve(ITEM))  # R: dict[str, int]
        reveal_type(await client.outgoing.find("tea"))  # R: Item | None
        reveal_type(await client.outgoing.leave())  # R: None
        reveal_type(await client.with_timeout(0.1).find("tea"))  # R: Item | None


async def results(client: grestws.Client[ShopServer, ShopClient]) -> None:
    reserved = await grestws.as_result(client.outgoing.reserve(ITEM))
    reveal_type(reserved)  # R: Ok[dict[str, int]] | Err
    match reserved:
        case grestws.Ok(counts):
            reveal_type(counts)  # R: dict[str, int]
        case grestws.Err(OutOfStock() as short):
            reveal_type(short)  # R: OutOfStock
            reveal_type(short.data)  # R: StockInfo
            reveal_type(short.data.available)  # R: int
        case grestws.Err(ShopClosed() as closed):
            reveal_type(closed.data)  # R: None
        case grestws.Err(error):
            reveal_type(error.data)  # R: object
    found = await grestws.as_result(client.outgoing.find("tea"))
    if isinstance(found, grestws.Ok) and found.value is not None:
        reveal_type(found.value)  # R: Item


async def errors() -> None:
    short = OutOfStock("Only one left", data=StockInfo(sku="tea", available=1))
    reveal_type(short)  # R: OutOfStock
    reveal_type(short.data)  # R: StockInfo
    reveal_type(ShopClosed("Back at nine").data)  # R: None
    reveal_type(grestws.ApiError("plain"))  # R: ApiError[None]
    try:
        raise short
    except OutOfStock as exc:
        reveal_type(exc.data.sku)  # R: str


class Shop:
    """A structural handler: it never names ShopServer."""

    def __init__(self, conn: grestws.ServerConnection[ShopClient]) -> None:
        self.conn = conn

    async def version(self) -> str:
        return "1"

    async def list_items(self) -> list[Item]:
        sure = await self.conn.outgoing.confirm("List everything?")
        reveal_type(sure)  # R: bool
        reveal_type(await self.conn.outgoing.restocked([ITEM]))  # R: None
        return [ITEM] if sure else []

    async def reserve(self, item: Item) -> dict[str, int]:
        raise OutOfStock(data=StockInfo(sku=item.sku, available=0))

    async def find(self, sku: str) -> Item | None:
        return None

    async def leave(self) -> None:
        pass


async def confirm_all(text: str) -> bool:
    return bool(text)


async def show(items: list[Item]) -> None:
    pass


async def handlers(client: grestws.Client[ShopServer, ShopClient]) -> None:
    app = grestws.App()
    app.add(ShopApi, Shop)
    client.on(ShopClient.confirm)(confirm_all)
    client.on(ShopClient.restocked)(show)
