"""grestws: contract-first, typed RPC over WebSockets.

Declare a socket contract once; get a typed server handler, a typed client proxy, runtime
validation of every payload and the wire protocol of PROTOCOL.md.

Names are imported lazily, so ``import grestws.protocol`` loads neither asyncio nor
websockets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from grestws.access_log import AccessLog
    from grestws.app import App
    from grestws.auth import BearerAuth
    from grestws.broadcast import broadcast
    from grestws.client import Client, ClientState, connect
    from grestws.connections import ServerConnection
    from grestws.context import (
        Connection,
        ConnectRequest,
        ContextKey,
        MessageInfo,
        current_connection,
        current_message,
    )
    from grestws.contract import SocketContract, SocketSchema, notify, request, unwatch, watch
    from grestws.exceptions import (
        ApiError,
        BadRequestError,
        ConnectError,
        ConnectionClosedError,
        ConnectionLostError,
        ContractError,
        ExistsError,
        ForbiddenError,
        FrameError,
        GrestwsError,
        HandshakeTimeoutError,
        InvalidStateError,
        Issue,
        NotAuthorizedError,
        NotFoundError,
        PayloadTooLargeError,
        RequestTimeoutError,
        RetryAfter,
        RouteNotFoundError,
        ServerError,
        TooManyRequestsError,
        UnavailableError,
        ValidationError,
    )
    from grestws.incidents import Incident, IncidentKind
    from grestws.interceptors import Call, Interceptor, Proceed, outcome
    from grestws.limits import Limits
    from grestws.middleware import ClientHandshake, Middleware, ServerHandshake
    from grestws.permissions import PUBLIC, AllOf, AnyOf, Identity, Permission, Scope
    from grestws.pool import ClientPool
    from grestws.rates import Rate
    from grestws.reconnect import CloseCause, Drop, LinkInfo, Reconnect
    from grestws.recovery import Recovery
    from grestws.result import Err, Ok, Result, as_result
    from grestws.rooms import Rooms
    from grestws.server import Server, serve

__all__ = (
    "PUBLIC",
    "AccessLog",
    "AllOf",
    "AnyOf",
    "ApiError",
    "App",
    "BadRequestError",
    "BearerAuth",
    "Client",
    "ClientHandshake",
    "ClientPool",
    "Call",
    "ClientState",
    "CloseCause",
    "ConnectError",
    "ConnectRequest",
    "Connection",
    "ConnectionClosedError",
    "ConnectionLostError",
    "ContextKey",
    "ContractError",
    "Drop",
    "Err",
    "ExistsError",
    "ForbiddenError",
    "FrameError",
    "GrestwsError",
    "HandshakeTimeoutError",
    "Identity",
    "Incident",
    "IncidentKind",
    "Interceptor",
    "InvalidStateError",
    "Issue",
    "Limits",
    "LinkInfo",
    "MessageInfo",
    "Middleware",
    "NotAuthorizedError",
    "NotFoundError",
    "Ok",
    "PayloadTooLargeError",
    "Permission",
    "Proceed",
    "Rate",
    "Reconnect",
    "Recovery",
    "RequestTimeoutError",
    "Result",
    "RetryAfter",
    "Rooms",
    "RouteNotFoundError",
    "Scope",
    "Server",
    "ServerConnection",
    "ServerError",
    "ServerHandshake",
    "SocketContract",
    "SocketSchema",
    "TooManyRequestsError",
    "UnavailableError",
    "ValidationError",
    "__version__",
    "as_result",
    "broadcast",
    "connect",
    "current_connection",
    "current_message",
    "notify",
    "outcome",
    "request",
    "serve",
    "unwatch",
    "watch",
)

_HOMES = {
    "AccessLog": "grestws.access_log",
    "App": "grestws.app",
    "ConnectRequest": "grestws.context",
    "ServerConnection": "grestws.connections",
    "BearerAuth": "grestws.auth",
    "broadcast": "grestws.broadcast",
    "Client": "grestws.client",
    "ClientState": "grestws.client",
    "connect": "grestws.client",
    "Connection": "grestws.context",
    "MessageInfo": "grestws.context",
    "ContextKey": "grestws.context",
    "Incident": "grestws.incidents",
    "IncidentKind": "grestws.incidents",
    "Call": "grestws.interceptors",
    "Interceptor": "grestws.interceptors",
    "Proceed": "grestws.interceptors",
    "outcome": "grestws.interceptors",
    "Limits": "grestws.limits",
    "Rate": "grestws.rates",
    "ClientPool": "grestws.pool",
    "CloseCause": "grestws.reconnect",
    "Drop": "grestws.reconnect",
    "LinkInfo": "grestws.reconnect",
    "Reconnect": "grestws.reconnect",
    "Recovery": "grestws.recovery",
    "ClientHandshake": "grestws.middleware",
    "Middleware": "grestws.middleware",
    "ServerHandshake": "grestws.middleware",
    "PUBLIC": "grestws.permissions",
    "AllOf": "grestws.permissions",
    "AnyOf": "grestws.permissions",
    "Identity": "grestws.permissions",
    "Permission": "grestws.permissions",
    "Scope": "grestws.permissions",
    "current_connection": "grestws.context",
    "current_message": "grestws.context",
    "SocketContract": "grestws.contract",
    "SocketSchema": "grestws.contract",
    "notify": "grestws.contract",
    "request": "grestws.contract",
    "watch": "grestws.contract",
    "unwatch": "grestws.contract",
    "Err": "grestws.result",
    "Ok": "grestws.result",
    "Result": "grestws.result",
    "as_result": "grestws.result",
    "Rooms": "grestws.rooms",
    "Server": "grestws.server",
    "serve": "grestws.server",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        if name in __all__:
            home = "grestws.exceptions"
        else:
            raise AttributeError(f"module 'grestws' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
