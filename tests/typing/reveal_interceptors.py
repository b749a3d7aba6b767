"""What the checkers infer for interceptors, and which interceptors they accept.

Each ``reveal_type`` line ends with the type both checkers must print, as described in
``test_typing.py``. The functions are never called; importing the module runs nothing.
"""

from __future__ import annotations

from typing import Any, reveal_type

import grestws
from examples.chat.contract import ChatApi


async def timed(call: grestws.Call, proceed: grestws.Proceed) -> Any:
    reveal_type(call.path)  # R: str
    reveal_type(call.identity)  # R: Identity | None
    reveal_type(call.request_id)  # R: int | None
    reveal_type(call.is_request)  # R: bool
    try:
        return await proceed()
    except grestws.ApiError as error:
        reveal_type(grestws.outcome(error))  # R: str
        raise


class Audit:
    async def __call__(self, call: grestws.Call, proceed: grestws.Proceed) -> Any:
        return await proceed()


def installed() -> None:
    app = grestws.App(interceptors=[timed, Audit()])
    app.interceptors.append(timed)
    reveal_type(app.interceptors)  # R: list[Interceptor]
    grestws.Client("ws://127.0.0.1:8765", ChatApi, interceptors=[timed, Audit()])
