"""Interceptors the checkers must refuse.

Each line with a mistake ends with the errors both checkers must report, as described in
``test_typing.py``. The functions are never called; importing the module runs nothing.
"""

from __future__ import annotations

from typing import Any

import grestws
from examples.chat.contract import ChatApi


async def one_argument(call: grestws.Call) -> Any:
    return None


async def wrong_call(call: str, proceed: grestws.Proceed) -> Any:
    return await proceed()


def mistakes() -> None:
    grestws.App(interceptors=[one_argument])  # E: list-item reportArgumentType
    grestws.App(interceptors=[wrong_call])  # E: list-item reportArgumentType
    grestws.Client("ws://127.0.0.1:8765", ChatApi, interceptors=[one_argument])  # E: list-item reportArgumentType
