"""An App that uses what an AsyncAPI document can say, for tests/test_asyncapi.py (which
also has ``grestws asyncapi`` describe it in a subprocess).

``Board`` has a typed query, a union of tagged Structs, enums, optional fields, a tuple, a
Literal, a TypedDict, errors with and without data, permissions of every kind, a rate, a
deadline, an idempotent method, a watch and an unwatch, a wire name that is not an
identifier, and a wire name used in both directions. It is served at two paths; ``Notes``
is served at one, behind a BearerAuth in another header that admits anonymous clients.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal, Protocol, TypedDict

import msgspec

import grestws
from grestws import AllOf, AnyOf, Scope


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Circle(msgspec.Struct, tag="circle", rename="camel"):
    radius_cm: float


class Square(msgspec.Struct, tag="square", rename="camel"):
    side_cm: Annotated[float, msgspec.Meta(gt=0)]


class Drawing(msgspec.Struct, rename="camel"):
    """A drawing on a board."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    shapes: list[Circle | Square]
    color: Color = Color.RED
    priority: Priority | None = None
    note_text: str | None = None
    corner: tuple[int, int] = (0, 0)
    labels: dict[str, str] = {}
    stage: Literal["sketch", "final"] = "sketch"


class Drawn(TypedDict):
    drawingId: str
    revision: int


class BoardQuery(msgspec.Struct):
    board: Annotated[str, msgspec.Meta(min_length=1)]
    page: int = 1
    live: bool = False


class BoardInfo(msgspec.Struct, rename="camel"):
    board_id: str
    max_drawings: int


class BoardFull(grestws.ApiError[BoardInfo], type="BOARD_FULL", status_code=409):
    """The board has no room for another drawing."""


class Locked(grestws.ApiError, type="LOCKED", status_code=423):
    """The board is locked </pre><script>alert(1)</script>."""


class Archived(grestws.ApiError, type="ARCHIVED", status_code=410): ...


class BoardServer(Protocol):
    @grestws.request(
        errors=[BoardFull, Locked],
        permission=Scope("board:draw"),
        rate=grestws.Rate(10, per=60, burst=20),
        deadline=2.5,
        idempotent=True,
    )
    async def draw(self, drawing: Drawing) -> Drawn:
        """Add a drawing to the board.

        Everyone watching the board gets it as ``drawn``.
        """
        ...

    @grestws.notify(permission=AnyOf(Scope("board:admin"), AllOf(Scope("board:draw"), Scope("board:erase"))))
    async def erase_all(self) -> None:
        """Erase every drawing."""
        ...

    @grestws.watch("board", permission=grestws.PUBLIC)
    async def watch_board(self, board_id: str) -> None: ...

    @grestws.unwatch("board", permission=grestws.PUBLIC)
    async def unwatch_board(self, board_id: str) -> None: ...

    @grestws.request(name="snapshot/v2", errors=[Archived], permission=grestws.PUBLIC)
    async def snapshot(self) -> list[Drawing] | None: ...


class BoardClient(Protocol):
    @grestws.notify
    async def drawn(self, drawing: Drawing) -> None: ...

    @grestws.request
    async def draw(self, question: str) -> bool:
        """The same wire name as the server's ``draw``, in the other direction."""
        ...


Board = grestws.SocketContract(
    "Board", client_to_server=BoardServer, server_to_client=BoardClient, rename="camel"
)


async def verify(token: str) -> grestws.Identity | None:
    return grestws.Identity(token) if token else None


auth = grestws.BearerAuth(verify=verify)
BoardApi = Board.at("/ws/board", query=BoardQuery, permission=Scope("board:view")).use(auth)
ArchiveApi = Board.at("/ws/board/archive").use(auth)


class NotesServer(Protocol):
    @grestws.request
    async def add(self, text: str) -> int: ...


class NotesClient(Protocol):
    pass


Notes = grestws.SocketContract("Notes", client_to_server=NotesServer, server_to_client=NotesClient)
NotesApi = Notes.at("/notes").use(grestws.BearerAuth(verify=verify, header="x-token", allow_anonymous=True))


class BoardHandler(BoardServer):
    """Serves nothing: the documents only need the routes."""

    def __init__(self, conn: grestws.ServerConnection[BoardClient]) -> None:
        self.conn = conn


class NotesHandler(NotesServer):
    def __init__(self, conn: grestws.ServerConnection[NotesClient]) -> None:
        self.conn = conn


def make_app() -> grestws.App:
    """A fresh App serving ``Board`` at two paths and ``Notes``."""
    app = grestws.App()
    app.add(BoardApi, BoardHandler)
    app.add(ArchiveApi, BoardHandler)
    app.add(NotesApi, NotesHandler)
    return app


app = make_app()
