"""The top-level names of grestws are exactly the intended ones, and each of them resolves."""

from __future__ import annotations

import importlib

import pytest

import grestws

EXPECTED = frozenset(
    {
        "__version__",
        # contracts
        "SocketContract",
        "SocketSchema",
        "notify",
        "request",
        "watch",
        "unwatch",
        # serving and connecting
        "App",
        "ConnectRequest",
        "Server",
        "ServerConnection",
        "serve",
        "broadcast",
        "Rooms",
        "Client",
        "ClientState",
        "connect",
        # surviving the network
        "Reconnect",
        "LinkInfo",
        "Drop",
        "CloseCause",
        "ClientPool",
        "Recovery",
        # inside handlers
        "Connection",
        "MessageInfo",
        "BearerAuth",
        "Scope",
        "Permission",
        "Identity",
        "AnyOf",
        "AllOf",
        "PUBLIC",
        "ServerHandshake",
        "Middleware",
        "ContextKey",
        "ClientHandshake",
        "current_connection",
        "current_message",
        # limits and incidents
        "Limits",
        "Rate",
        "Incident",
        "IncidentKind",
        # interceptors
        "AccessLog",
        "Call",
        "Interceptor",
        "Proceed",
        "outcome",
        # results
        "Ok",
        "Err",
        "Result",
        "as_result",
        # errors
        "GrestwsError",
        "ApiError",
        "Issue",
        "ValidationError",
        "NotAuthorizedError",
        "ForbiddenError",
        "BadRequestError",
        "NotFoundError",
        "ExistsError",
        "PayloadTooLargeError",
        "RouteNotFoundError",
        "TooManyRequestsError",
        "RetryAfter",
        "ServerError",
        "UnavailableError",
        "ConnectError",
        "ConnectionClosedError",
        "ConnectionLostError",
        "RequestTimeoutError",
        "HandshakeTimeoutError",
        "FrameError",
        "ContractError",
        "InvalidStateError",
    }
)

HOMES = {
    "grestws.exceptions": [
        "GrestwsError",
        "ApiError",
        "Issue",
        "ValidationError",
        "NotAuthorizedError",
        "ForbiddenError",
        "BadRequestError",
        "NotFoundError",
        "ExistsError",
        "PayloadTooLargeError",
        "RouteNotFoundError",
        "TooManyRequestsError",
        "RetryAfter",
        "ServerError",
        "UnavailableError",
        "ConnectError",
        "ConnectionClosedError",
        "ConnectionLostError",
        "RequestTimeoutError",
        "HandshakeTimeoutError",
        "FrameError",
        "ContractError",
        "InvalidStateError",
    ],
    "grestws.rooms": ["Rooms"],
    "grestws.contract": ["SocketContract", "SocketSchema", "notify", "request", "unwatch", "watch"],
    "grestws.context": [
        "ConnectRequest",
        "Connection",
        "ContextKey",
        "MessageInfo",
        "current_connection",
        "current_message",
    ],
    "grestws.connections": ["ServerConnection"],
    "grestws.middleware": ["ClientHandshake", "Middleware", "ServerHandshake"],
    "grestws.auth": ["BearerAuth"],
    "grestws.permissions": ["PUBLIC", "AllOf", "AnyOf", "Identity", "Permission", "Scope"],
    "grestws.result": ["Ok", "Err", "Result", "as_result"],
    "grestws.app": ["App"],
    "grestws.server": ["Server", "serve"],
    "grestws.broadcast": ["broadcast"],
    "grestws.client": ["Client", "ClientState", "connect"],
    "grestws.limits": ["Limits"],
    "grestws.rates": ["Rate"],
    "grestws.incidents": ["Incident", "IncidentKind"],
    "grestws.interceptors": ["Call", "Interceptor", "Proceed", "outcome"],
    "grestws.access_log": ["AccessLog"],
    "grestws.reconnect": ["CloseCause", "Drop", "LinkInfo", "Reconnect"],
    "grestws.pool": ["ClientPool"],
    "grestws.recovery": ["Recovery"],
}

PUBLIC_MODULES = (
    "grestws.exceptions",
    "grestws.auth",
    "grestws.asgi_auth",
    "grestws.permissions",
    "grestws.middleware",
    "grestws.protocol",
    "grestws.protocol.frames",
    "grestws.protocol.codec",
    "grestws.contract",
    "grestws.contract.contract",
    "grestws.contract.methods",
    "grestws.context",
    "grestws.result",
    "grestws.session",
    "grestws.app",
    "grestws.server",
    "grestws.broadcast",
    "grestws.client",
    "grestws.testkit",
    "grestws.transports",
    "grestws.transports.memory",
    "grestws.transports.websockets",
    "grestws.transports.picows",
    "grestws.transports.asgi",
    "grestws.connections",
    "grestws.limits",
    "grestws.rates",
    "grestws.handshake",
    "grestws.contract.envelopes",
    "grestws.incidents",
    "grestws.origins",
    "grestws.deadlines",
    "grestws.liveness",
    "grestws.reconnect",
    "grestws.link",
    "grestws.pool",
    "grestws.recovery",
    "grestws.recovery.memory",
    "grestws.recovery.sessions",
    "grestws.protocol.positions",
    "grestws.broker.envelopes",
    "grestws.asyncapi",
    "grestws.asyncapi.document",
    "grestws.asyncapi.schemas",
    "grestws.asyncapi.asgi",
    "grestws.typescript",
)


def test_all_is_exactly_the_expected_set() -> None:
    assert set(grestws.__all__) == EXPECTED


def test_all_is_a_tuple_without_duplicates() -> None:
    assert isinstance(grestws.__all__, tuple)
    assert len(grestws.__all__) == len(set(grestws.__all__))


def test_dir_lists_the_public_names() -> None:
    assert dir(grestws) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_name_resolves(name: str) -> None:
    assert getattr(grestws, name) is not None


@pytest.mark.parametrize(("home", "name"), [(home, name) for home, names in HOMES.items() for name in names])
def test_names_are_the_objects_of_their_home_module(home: str, name: str) -> None:
    assert getattr(grestws, name) is getattr(importlib.import_module(home), name)


def test_homes_cover_every_name() -> None:
    assert {name for names in HOMES.values() for name in names} | {"__version__"} == EXPECTED


def test_version_is_a_string() -> None:
    assert isinstance(grestws.__version__, str)
    assert grestws.__version__.count(".") >= 2


@pytest.mark.parametrize("name", ["nope", "Session", "Transport", "STANDARD_ERRORS", "apierror"])
def test_unknown_attribute_raises_attribute_error(name: str) -> None:
    with pytest.raises(AttributeError, match=f"module 'grestws' has no attribute '{name}'"):
        getattr(grestws, name)
    assert not hasattr(grestws, name)


def test_from_import_of_an_unknown_name_fails() -> None:
    with pytest.raises(ImportError):
        exec("from grestws import nope", {})


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_public_modules_declare_a_tuple_all_that_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    assert isinstance(mod.__all__, tuple)
    assert len(mod.__all__) == len(set(mod.__all__))
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
