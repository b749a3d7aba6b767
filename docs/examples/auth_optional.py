"""BearerAuth with anonymous callers: a connection without a token may call PUBLIC methods,
a token is still checked when one is sent, and HTTP still needs one.

Run from the repository root: ``python docs/examples/auth_optional.py``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grestws
from grestws import PUBLIC, Identity, Scope


class NewsServer(Protocol):
    @grestws.request(permission=PUBLIC)
    async def headlines(self) -> list[str]: ...

    @grestws.request(permission=Scope("news:write"))
    async def publish(self, headline: str) -> int: ...


class NewsClient(Protocol):
    @grestws.notify
    async def published(self, headline: str) -> None: ...


News = grestws.SocketContract("News", client_to_server=NewsServer, server_to_client=NewsClient)


async def verify(token: str) -> Identity | None:
    """``secret-<name>`` is user ``<name>``, who may publish."""
    name = token.removeprefix("secret-")
    if not token.startswith("secret-") or not name:
        return None
    return Identity(name, frozenset({"news:write"}))


auth = grestws.BearerAuth(verify=verify, allow_anonymous=True)
NewsApi = News.at("/ws/news").use(auth)

headlines: list[str] = []


class NewsHandler(NewsServer):
    def __init__(self, conn: grestws.ServerConnection[NewsClient]) -> None:
        self.conn = conn

    async def headlines(self) -> list[str]:
        return list(headlines)  # self.conn.identity is None for an anonymous reader

    async def publish(self, headline: str) -> int:
        identity = self.conn.identity
        assert identity is not None  # publish needs a scope, so the caller has an identity
        headlines.append(f"{headline} ({identity.id})")
        return len(headlines)


def client_schema(token: str | None) -> grestws.SocketSchema[NewsServer, NewsClient]:
    """The client's schema: ``token`` ``None`` sends no header, so the socket is anonymous."""
    return News.at("/ws/news").use(grestws.BearerAuth(lambda: token))


async def callers(url: str) -> None:
    async with grestws.connect(url, client_schema("secret-ann")) as ann:
        assert await ann.outgoing.publish("Sockets for everyone") == 1

    async with grestws.connect(url, client_schema(None)) as anonymous:
        assert await anonymous.outgoing.headlines() == ["Sockets for everyone (ann)"]
        try:
            await anonymous.outgoing.publish("Anonymous scoop")
        except grestws.NotAuthorizedError as exc:
            print("anonymous publish:", exc)  # refused per call; the socket stays open
        assert await anonymous.outgoing.headlines() == ["Sockets for everyone (ann)"]

    try:
        await grestws.connect(url, client_schema("forged"))  # a bad token is never anonymous
    except grestws.NotAuthorizedError as exc:
        print("forged token:", exc)
    else:
        raise AssertionError("a forged token was admitted")


async def http() -> None:
    try:
        await auth.authenticate({})  # HTTP is unaffected: a request needs a token
    except grestws.NotAuthorizedError as exc:
        print("HTTP without a token:", exc)
    assert (await auth.authenticate({"authorization": "Bearer secret-ann"})).id == "ann"


async def main() -> None:
    app = grestws.App()
    app.add(NewsApi, NewsHandler)
    assert app.permission_problems() == []  # BearerAuth identifies, so publish can be granted
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        await callers(server.url)
    await http()


if __name__ == "__main__":
    asyncio.run(main())
