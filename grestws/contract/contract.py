"""Socket contracts and schemas, and the typed proxies built from them.

A :class:`SocketContract` names the two halves of a conversation; a :class:`SocketSchema`
puts a contract at a URL path. Both are generic in the two halves, so that every typed
surface (the client's ``outgoing``, the server's handler, the server's proxy to the client)
follows from one declaration.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, Protocol, overload

import msgspec
import msgspec.inspect
from typing_extensions import TypeForm, TypeVar

from grestws.contract.methods import MethodKind, MethodSpec
from grestws.exceptions import ApiError, ContractError, InvalidStateError, ValidationError
from grestws.middleware import Middleware, overrides
from grestws.permissions import Permission
from grestws.protocol.codec import validation_issues

__all__ = (
    "CallRoute",
    "Caller",
    "ContractHalf",
    "Entry",
    "SocketContract",
    "SocketSchema",
    "call_route",
)

C2S = TypeVar("C2S")
S2C = TypeVar("S2C")
Q = TypeVar("Q", default=None)
QT = TypeVar("QT")

Entry = tuple[MethodSpec, Callable[..., Awaitable[Any]], bool]
"""A dispatch table entry: the method, its function, and whether it takes the handler first."""

CallRoute = tuple[MethodSpec, Callable[..., Awaitable[Any]], bool]
"""How an incoming call reaches its handler: the method, its function (bound to the
handler object where it takes one, so it is called with the argument alone) and whether
calling it runs none of its code (an ``async def`` function, which only makes its
coroutine)."""


def call_route(entry: Entry, target: object) -> CallRoute:
    """The route of a call to the function of ``entry`` (a method of ``target``)."""
    spec, fn, takes_self = entry
    if takes_self:
        fn = types.MethodType(fn, target)
    function = getattr(fn, "__func__", fn)
    direct = isinstance(function, types.FunctionType) and bool(
        function.__code__.co_flags & inspect.CO_COROUTINE
    )
    return spec, fn, direct


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Caller(Protocol):
    """What a proxy sends through: a session (or anything that speaks like one)."""

    def request(self, spec: MethodSpec, arg: Any, timeout: float | None) -> Awaitable[Any]: ...
    def notify(self, spec: MethodSpec, arg: Any) -> Awaitable[None]: ...


class ContractHalf:
    """The methods of one direction, by Python name and by wire path, with its proxy class.

    Attributes:
        protocol: The user's Protocol class with the stubs.
        methods: Specs by Python name, in declaration order.
        by_path: Specs by wire path (``ChatApi.sendMessage``).
    """

    def __init__(self, contract_name: str, protocol: type[Any], *, rename: str | None) -> None:
        self.protocol = protocol
        self.methods: dict[str, MethodSpec] = {}
        for name, member in _stubs(protocol):
            self.methods[name] = MethodSpec(contract_name, member, rename=rename)
        self.by_path: dict[str, MethodSpec] = {}
        for spec in self.methods.values():
            if spec.path in self.by_path:
                raise ContractError(f"{spec.path} is declared twice")
            self.by_path[spec.path] = spec
        self.by_function: dict[Callable[..., Any], MethodSpec] = {
            spec.function: spec for spec in self.methods.values()
        }
        self._proxy_class = _proxy_class(protocol, self.methods)
        self._tables: dict[type[Any], dict[str, Entry]] = {}

    def __iter__(self) -> Iterator[MethodSpec]:
        return iter(self.methods.values())

    def proxy(self, caller: Caller, timeout: float | None) -> Any:
        """A proxy whose methods send through ``caller``; typed by the caller as the Protocol."""
        proxy: Any = object.__new__(self._proxy_class)
        proxy._caller = caller
        proxy._timeout = timeout
        return proxy

    def spec_for(self, method: Callable[..., Any]) -> MethodSpec:
        """The spec of a stub given as ``Protocol.method``.

        Raises:
            ContractError: ``method`` is not a stub of this half.
        """
        try:
            return self.by_function[method]
        except (KeyError, TypeError):
            raise ContractError(f"{method!r} is not a method of {self.protocol.__name__}") from None

    def bind(self, handler: object) -> Mapping[str, Entry]:
        """The dispatch table for ``handler``: wire path -> (spec, function, takes_self).

        Methods defined on the handler's class are looked up once per class and called as
        ``function(handler, arg)``, so every handler of a class shares one table: callers
        must not change it. Methods the handler leaves out, or inherits unimplemented from
        the Protocol, are left out, so calls to them answer ROUTE_NOT_FOUND.
        """
        handler_type = type(handler)
        cached = self._tables.get(handler_type)
        if cached is not None:
            return cached
        table: dict[str, Entry] = {}
        shareable = True
        for name, spec in self.methods.items():
            method = getattr(handler_type, name, None)
            if method is spec.function:
                continue
            if isinstance(method, types.FunctionType):
                table[spec.path] = (spec, method, True)
                continue
            bound = getattr(handler, name, None)
            if bound is not None:
                table[spec.path] = (spec, bound, False)
                shareable = False
        if shareable:
            self._tables[handler_type] = table
        return table


def _stubs(protocol: type[Any]) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The public functions of a Protocol class and of its bases, in declaration order."""
    names: dict[str, None] = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol, Generic):
            continue
        for name, member in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(member):
                names[name] = None
    for name in names:
        yield name, getattr(protocol, name)


def _proxy_class(protocol: type[Any], methods: Mapping[str, MethodSpec]) -> type[Any]:
    namespace: dict[str, Any] = {"__slots__": ("_caller", "_timeout"), "__module__": protocol.__module__}
    for name, spec in methods.items():
        namespace[name] = _proxy_method(spec)
    return type(f"{protocol.__name__}Proxy", (), namespace)


def _proxy_method(spec: MethodSpec) -> Callable[..., Awaitable[Any]]:
    """A method that sends ``spec``, taking the stub's parameter by position or by name."""
    param = spec.param_name or "arg"
    if not param.isidentifier() or param in ("self", "spec"):
        param = "arg"
    if spec.kind is MethodKind.REQUEST:
        call_expr = "request(spec, {0}, self._timeout)"
    else:
        call_expr = "notify(spec, {0})"
    source = f"def {spec.py_name}(self, {param}=None):\n    return self._caller.{call_expr.format(param)}\n"
    namespace: dict[str, Any] = {"spec": spec}
    exec(source, namespace)  # a plain function, so calls cost no more than a hand-written method
    call: Callable[..., Awaitable[Any]] = namespace[spec.py_name]
    call.__qualname__ = f"Proxy.{spec.py_name}"
    call.__doc__ = spec.function.__doc__
    return call


def _as_class(half: object, role: str) -> type[Any]:
    if not isinstance(half, type):
        raise ContractError(f"{role} must be a class of method stubs, got {half!r}")
    return half


class SocketContract(Generic[C2S, S2C]):
    """A named conversation: what the client may call on the server and the server on the client.

    Args:
        name: The contract's name, the first part of every wire path (``ChatApi``).
        client_to_server: The Protocol class of the methods the server implements.
        server_to_client: The Protocol class of the methods the client implements.
        rename: ``"camel"`` gives every method without an explicit ``name`` the camelCase
            form of its Python name on the wire.

    Raises:
        ContractError: a stub or an error declaration cannot work; the message names it.
    """

    def __init__(
        self,
        name: str,
        *,
        client_to_server: TypeForm[C2S],
        server_to_client: TypeForm[S2C],
        rename: str | None = None,
    ) -> None:
        if not _NAME.fullmatch(name):
            raise ContractError(f"contract name {name!r} must be an identifier")
        if rename not in (None, "camel"):
            raise ContractError(f"rename must be None or 'camel', not {rename!r}")
        self.name = name
        self.client_to_server = ContractHalf(
            name, _as_class(client_to_server, "client_to_server"), rename=rename
        )
        self.server_to_client = ContractHalf(
            name, _as_class(server_to_client, "server_to_client"), rename=rename
        )
        gated = [spec.path for spec in self.server_to_client if spec.gated]
        if gated:
            raise ContractError(
                f"server-to-client methods are never gated, but these declare a permission: {gated}"
            )
        self.errors: dict[str, type[ApiError[Any]]] = {
            type_name: error_cls
            for half in (self.client_to_server, self.server_to_client)
            for spec in half
            for type_name, error_cls in spec.errors.items()
        }
        """Every error class the contract's methods declare, by wire type."""

    def __repr__(self) -> str:
        return f"<SocketContract {self.name}>"

    @overload
    def at(self, path: str, *, permission: Permission | None = None) -> SocketSchema[C2S, S2C]: ...
    @overload
    def at(
        self, path: str, *, query: TypeForm[QT], permission: Permission | None = None
    ) -> SocketSchema[C2S, S2C, QT]: ...
    def at(self, path: str, *, query: Any = None, permission: Permission | None = None) -> Any:
        """This contract served at a URL path: ``ChatContract.at("/ws/chat")``.

        ``query`` declares the type of the query parameters clients connect with:
        ``ChatContract.at("/ws/chat", query=RoomQuery)``. The client checks its query
        before connecting; the server coerces the parameters (``"5"`` to ``5``) and closes
        with 4000 when they do not fit; handlers read ``schema.query_of(conn)``.
        ``permission`` is what a connection needs at all (see :mod:`grestws.permissions`).
        """
        return SocketSchema(self, path, query=query, permission=permission)


class SocketSchema(Generic[C2S, S2C, Q]):
    """A contract bound to a URL path: what a server serves and a client connects to.

    Args:
        contract: The contract.
        path: The URL path, e.g. ``/ws/chat`` (a leading ``/`` is added when missing).
        middleware: Handshake middleware, run in this order (see :meth:`use`).
        query: The type of the query parameters a client connects with (a msgspec Struct
            of scalar fields, say), or ``None`` for no typed query.
        permission: What an identity needs to open a connection at all (checked once, at
            the handshake: NOT_AUTHORIZED or FORBIDDEN in ``x``, close 4001).

    Concurrency: a schema never changes once made; share it between servers and clients.
    """

    def __init__(
        self,
        contract: SocketContract[C2S, S2C],
        path: str,
        middleware: Sequence[Middleware] = (),
        query: Any = None,
        permission: Permission | None = None,
    ) -> None:
        if not path.startswith("/"):
            path = "/" + path
        if "?" in path or "#" in path:
            raise ContractError(f"schema path {path!r} cannot carry a query or fragment")
        self.contract = contract
        self.path = path
        self.middleware: tuple[Middleware, ...] = tuple(middleware)
        self.query: Any = query
        if permission is not None and not isinstance(permission, Permission):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ContractError(f"permission must be a grestws Permission, not {permission!r}")
        self.permission = permission
        if query is not None:
            named = (msgspec.inspect.StructType, msgspec.inspect.TypedDictType, msgspec.inspect.DataclassType)
            if not isinstance(msgspec.inspect.type_info(query), named):
                raise ContractError(
                    f"{path}: the query type must have named fields (a Struct, TypedDict or dataclass)"
                )

    @property
    def name(self) -> str:
        """The contract's name."""
        return self.contract.name

    def __repr__(self) -> str:
        return f"<SocketSchema {self.contract.name} at {self.path}>"

    def use(self, middleware: Middleware) -> SocketSchema[C2S, S2C, Q]:
        """This schema with ``middleware`` added after the ones it has:
        ``ChatContract.at("/ws/chat").use(auth).use(locale)``.

        The schema itself is left as it is, so a client and a server can share a base.
        """
        if not isinstance(middleware, Middleware):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ContractError(f"{middleware!r} is not a grestws.Middleware")
        return SocketSchema(
            self.contract, self.path, (*self.middleware, middleware), self.query, self.permission
        )

    @property
    def has_resolver(self) -> bool:
        """Whether a middleware of this schema resolves identities (``identify``)."""
        return any(overrides(middleware, "identify") for middleware in self.middleware)

    def parse_query(self, params: Mapping[str, str]) -> Q:
        """The typed query from URL parameters, strings coerced (``"5"`` to ``5``).

        Raises:
            ValidationError: the parameters do not fit the query type.
        """
        try:
            result: Q = msgspec.convert(dict(params), type=self.query, strict=False)
        except msgspec.ValidationError as exc:
            raise ValidationError("Invalid query parameters", data=validation_issues(exc)) from exc
        return result

    def encode_query(self, query: Q | None) -> dict[str, str]:
        """URL parameters for ``query``, after checking it against the query type; ``None``
        sends none, which suits a query type whose fields all have defaults.

        Raises:
            ValidationError: ``query`` does not fit the query type (a constraint, say).
        """
        params: Any = {} if query is None else msgspec.to_builtins(query)
        try:
            msgspec.convert(params, type=self.query)
        except msgspec.ValidationError as exc:
            raise ValidationError("Invalid query parameters", data=validation_issues(exc)) from exc
        if not isinstance(params, dict):
            raise ValidationError("The query must be an object of named fields", data=[])
        fields: dict[str, object] = params  # pyright: ignore[reportUnknownVariableType]
        return {name: _query_value(value) for name, value in fields.items() if value is not None}

    def query_of(self, connection: Any) -> Q:
        """The typed query a connection of this schema was opened with (on the server).

        Raises:
            InvalidStateError: ``connection`` is not a server connection of this schema.
        """
        try:
            value: Q = connection.typed_query
        except AttributeError:
            raise InvalidStateError(f"{connection!r} is not a server connection") from None
        return value


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        raise ValidationError("Query parameters are scalars", data=[])
    return str(value)
