"""A contract with every kind of payload type, and an App serving it beside the chat, for
tests/test_typescript.py: the generated TypeScript must compile, and (with Node) talk to
``grestws serve tests.typescript_app:app``.

The board's client authenticates with ``secret-<name>``; ``createPost`` pushes the post
back, refuses the title ``full`` with BOARD_FULL and waits on the title ``slow``;
``askClient`` asks the client's ``confirm`` and answers what it said; ``dropMe`` makes
the server drop the connection (1011), so that the client reconnects.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import uuid
from typing import Annotated, Literal, Protocol

import msgspec

import grestws
from examples.chat.contract import ChatApi
from examples.chat.server import ChatHandler


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class TextBody(msgspec.Struct, tag="text", rename="camel"):
    text: str


class ImageBody(msgspec.Struct, tag="image", rename="camel"):
    url: str
    width_px: Annotated[int, msgspec.Meta(gt=0)]


class Point(msgspec.Struct, array_like=True):
    x: float
    y: float


class Author(msgspec.Struct, rename="camel"):
    user_id: uuid.UUID
    display_name: str | None = None


class NewPost(msgspec.Struct, rename="camel"):
    """What a client posts."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=80, description="Shown in lists")]
    body: TextBody | ImageBody
    color: Color = Color.RED
    priority: Priority = Priority.LOW
    status: Literal["draft", "published"] = "draft"
    tags: list[str] = []
    scores: dict[str, float] = {}
    where: Point | None = None


class Post(msgspec.Struct, rename="camel"):
    """A post on the board."""

    id: int
    title: str
    body: TextBody | ImageBody
    color: Color
    priority: Priority
    status: Literal["draft", "published"]
    author: Author
    created: Annotated[datetime.datetime, msgspec.Meta(tz=True)]
    tags: list[str]
    scores: dict[str, float]
    where: Point | None = None
    attachment: bytes | None = None
    ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    labels: frozenset[str] = frozenset()
    pair: tuple[int, str] | None = None
    replies: list[Post] = []


class BoardInfo(msgspec.Struct, rename="camel"):
    capacity: int
    waiting: list[str]


class Question(msgspec.Struct, rename="camel"):
    text: str
    options: tuple[str, ...] = ()


class BoardQuery(msgspec.Struct, rename="camel"):
    board_id: str
    page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    verbose: bool = False


class BoardFull(grestws.ApiError[BoardInfo], type="BOARD_FULL", status_code=409):
    """The board takes no more posts."""


class Locked(grestws.ApiError, type="LOCKED", status_code=423):
    """The client is locked and answers nothing."""


class BoardServer(Protocol):
    """What a client may call on the board."""

    @grestws.request(errors=[BoardFull, grestws.NotFoundError], permission=grestws.PUBLIC)
    async def create_post(self, post: NewPost) -> Post:
        """Post; the board pushes the post back as ``postCreated``."""
        ...

    @grestws.request(idempotent=True, permission=grestws.PUBLIC)
    async def get_post(self, post_id: int) -> Post | None: ...

    @grestws.request(permission=grestws.PUBLIC)
    async def list_posts(self) -> list[Post]: ...

    @grestws.request(permission=grestws.PUBLIC)
    async def ask_client(self, question: str) -> str:
        """Ask the client's ``confirm``; answers what it said."""
        ...

    @grestws.notify(permission=grestws.PUBLIC)
    async def touch(self, post_id: int) -> None: ...

    @grestws.notify(permission=grestws.PUBLIC)
    async def drop_me(self) -> None:
        """Have the server drop the connection (1011)."""
        ...

    @grestws.request(permission=grestws.PUBLIC)
    async def whoami(self) -> dict[str, str]: ...


class BoardClient(Protocol):
    """What the board may call on a client."""

    @grestws.notify
    async def post_created(self, post: Post) -> None: ...

    @grestws.request(errors=[Locked])
    async def confirm(self, question: Question) -> bool: ...


BoardContract = grestws.SocketContract(
    "BoardApi", client_to_server=BoardServer, server_to_client=BoardClient, rename="camel"
)
BoardApi = BoardContract.at("/ws/board", query=BoardQuery)


async def verify(token: str) -> grestws.Identity | None:
    name = token.removeprefix("secret-")
    return grestws.Identity(name) if token.startswith("secret-") and name else None


auth = grestws.BearerAuth(verify=verify)


class BoardHandler(BoardServer):
    def __init__(self, conn: grestws.ServerConnection[BoardClient]) -> None:
        self.conn = conn
        self.query = BoardApi.query_of(conn)
        self.posts: dict[int, Post] = {}

    async def create_post(self, post: NewPost) -> Post:
        if post.title == "full":
            raise BoardFull("Board is full", data=BoardInfo(capacity=2, waiting=["ann"]))
        if post.title == "slow":
            await asyncio.sleep(2)
        author = Author(
            user_id=uuid.UUID(int=7), display_name=self.conn.identity.id if self.conn.identity else None
        )
        created = Post(
            id=len(self.posts) + 1,
            title=post.title,
            body=post.body,
            color=post.color,
            priority=post.priority,
            status=post.status,
            author=author,
            created=datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            tags=post.tags,
            scores=post.scores,
            where=post.where,
            attachment=b"\x00\x01",
        )
        self.posts[created.id] = created
        await self.conn.outgoing.post_created(created)
        return created

    async def get_post(self, post_id: int) -> Post | None:
        return self.posts.get(post_id)

    async def list_posts(self) -> list[Post]:
        return list(self.posts.values())

    async def ask_client(self, question: str) -> str:
        try:
            answer = await self.conn.outgoing.confirm(Question(text=question, options=("yes", "no")))
        except Locked as exc:
            return f"locked: {exc.message}"
        return "yes" if answer else "no"

    async def touch(self, post_id: int) -> None:
        pass

    async def drop_me(self) -> None:
        self.conn.drop(1011, "dropped on request")

    async def whoami(self) -> dict[str, str]:
        identity = self.conn.identity
        return {
            "user": identity.id if identity else "",
            "board": self.query.board_id,
            "pageSize": str(self.query.page_size),
            "verbose": str(self.query.verbose).lower(),
        }


app = grestws.App()
app.add(ChatApi.use(auth), ChatHandler)
app.add(BoardApi.use(auth), BoardHandler)
