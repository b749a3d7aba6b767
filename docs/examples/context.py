"""current_connection() and current_message(): who is calling, without passing it around.

Run from the repository root: ``python docs/examples/context.py``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grestws


class AuditServer(Protocol):
    @grestws.request
    async def delete_item(self, item_id: str) -> bool: ...

    @grestws.notify
    async def touch(self, item_id: str) -> None: ...


class AuditClient(Protocol):
    @grestws.request
    async def confirm(self, question: str) -> bool: ...


AuditApi = grestws.SocketContract("AuditApi", client_to_server=AuditServer, server_to_client=AuditClient).at(
    "/ws/audit"
)

audit_log: list[str] = []


def audit(action: str) -> None:
    """Deep in the call stack: no connection argument needed."""
    conn = grestws.current_connection()
    message = grestws.current_message()
    audit_log.append(f"{conn.side} {conn.id[:8]} {message.path} id={message.id}: {action}")


class AuditHandler(AuditServer):
    def __init__(self, conn: grestws.ServerConnection[AuditClient]) -> None:
        self.conn = conn

    async def delete_item(self, item_id: str) -> bool:
        assert grestws.current_connection() is self.conn
        await asyncio.sleep(0.05)  # other calls run meanwhile; each keeps its own context
        if not await self.conn.outgoing.confirm(f"delete {item_id}?"):
            return False
        audit(f"deleted {item_id}")
        return True

    async def touch(self, item_id: str) -> None:
        audit(f"touched {item_id}")


app = grestws.App()
app.add(AuditApi, AuditHandler)


async def main() -> None:
    try:
        grestws.current_connection()
    except grestws.InvalidStateError as exc:
        print("outside a handler:", exc)

    async def confirm(question: str) -> bool:
        audit(f"asked {question!r}")  # on the client, the current connection is the Client
        return True

    async with (
        grestws.serve(app, "127.0.0.1", 0) as server,
        grestws.connect(server.url, AuditApi) as client,
    ):
        client.on(AuditClient.confirm)(confirm)
        await client.outgoing.touch("a")
        await asyncio.gather(client.outgoing.delete_item("b"), client.outgoing.delete_item("c"))
        assert any(line.startswith(f"client {client.id[:8]}") for line in audit_log)

    for line in audit_log:
        print(line)
    assert len(audit_log) == 5


if __name__ == "__main__":
    asyncio.run(main())
