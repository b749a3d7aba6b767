"""Declaring methods: the ``@request`` / ``@notify`` decorators and :class:`MethodSpec`.

A contract half is a ``typing.Protocol`` whose methods are annotated ``async def`` stubs::

    class ChatServer(Protocol):
        @request(name="sendMessage", errors=[RoomFull])
        async def send_message(self, req: SendMessageRequest) -> SendMessageResponse: ...

        @notify(name="markAsRead")
        async def mark_as_read(self, req: MarkAsReadRequest) -> None: ...

The decorators only attach options; the stub keeps its signature, so type checkers see the
method exactly as written. :class:`MethodSpec` turns a stub into the method's wire name,
kind, input and success types and the errors it declares, and builds its msgspec decoders
once, when the contract is declared.
"""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar, overload

import msgspec
import msgspec.inspect

from grestws.exceptions import (
    STANDARD_ERRORS,
    ApiError,
    ContractError,
    ForbiddenError,
    NotAuthorizedError,
    RouteNotFoundError,
    ServerError,
    TooManyRequestsError,
    UnavailableError,
    ValidationError,
)
from grestws.permissions import PUBLIC, Permission
from grestws.protocol.codec import message_key
from grestws.protocol.frames import FrameType
from grestws.rates import Rate

__all__ = ("MethodKind", "MethodOptions", "MethodSpec", "notify", "request", "unwatch", "watch")

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])
NF = TypeVar("NF", bound=Callable[..., Coroutine[Any, Any, None]])

_OPTIONS_ATTR = "__grestws_method__"

IMPLICIT_ERRORS: tuple[type[ApiError[Any]], ...] = (
    ValidationError,
    ServerError,
    RouteNotFoundError,
    NotAuthorizedError,
    ForbiddenError,
    TooManyRequestsError,
    UnavailableError,
)
"""Errors every method may answer with, because the framework itself produces them."""


class MethodKind(enum.Enum):
    """Request/response (an ``r`` answered by one ``s``) or fire-and-forget (``m``)."""

    REQUEST = "request"
    NOTIFY = "notify"


class MethodOptions(msgspec.Struct, frozen=True):
    """What a ``@request`` / ``@notify`` decorator attached to a stub."""

    kind: MethodKind
    name: str | None = None
    errors: tuple[type[ApiError[Any]], ...] = ()
    permission: Permission | None = None
    rate: Rate | None = None
    deadline: float | None = None
    topic: str | None = None
    watching: bool = True
    idempotent: bool = False


T = TypeVar("T", bound=Callable[..., Any])


class _Attach:
    """Attaches :class:`MethodOptions` to a stub and hands the stub back unchanged."""

    __slots__ = ("options",)

    def __init__(self, options: MethodOptions) -> None:
        self.options = options

    def __call__(self, fn: T) -> T:
        setattr(fn, _OPTIONS_ATTR, self.options)
        return fn


def _decorator(
    kind: MethodKind,
    name: str | None,
    errors: Iterable[type[ApiError[Any]]],
    permission: Permission | None,
    rate: Rate | None,
    deadline: float | None,
    topic: str | None = None,
    watching: bool = True,
    idempotent: bool = False,
) -> _Attach:
    if permission is not None and not isinstance(permission, Permission):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ContractError(f"permission must be a grestws Permission, not {permission!r}")
    if rate is not None and not isinstance(rate, Rate):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ContractError(f"rate must be a grestws Rate, not {rate!r}")
    if deadline is not None and not deadline > 0:
        raise ContractError(f"deadline must be a positive number of seconds, not {deadline!r}")
    if topic is not None and (not topic or ":" in topic):
        raise ContractError(f"a topic is a non-empty name without ':', not {topic!r}")
    return _Attach(
        MethodOptions(kind, name, tuple(errors), permission, rate, deadline, topic, watching, idempotent)
    )


@overload
def request(fn: F, /) -> F: ...
@overload
def request(
    *,
    name: str | None = None,
    errors: Iterable[type[ApiError[Any]]] = (),
    permission: Permission | None = None,
    rate: Rate | None = None,
    deadline: float | None = None,
    idempotent: bool = False,
) -> Callable[[F], F]: ...
def request(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    errors: Iterable[type[ApiError[Any]]] = (),
    permission: Permission | None = None,
    rate: Rate | None = None,
    deadline: float | None = None,
    idempotent: bool = False,
) -> F | Callable[[F], F]:
    """Declare a request/response method: the caller awaits exactly one typed answer.

    Args:
        name: The method's wire name (the part after ``<Contract>.``); defaults to the
            Python name, or its camelCase form when the contract says ``rename="camel"``.
        errors: The application errors (``ApiError`` subclasses) the method may raise.
            VALIDATION_ERROR, SERVER_ERROR, ROUTE_NOT_FOUND, NOT_AUTHORIZED, FORBIDDEN and
            TOO_MANY_REQUESTS are always allowed, because the framework itself answers
            with them.
        permission: What the caller needs (client-to-server methods only): ``PUBLIC``,
            ``Scope("chat:admin")``, ``AllOf(...)``, ``AnyOf(...)``. Checked before the
            input is validated; see :mod:`grestws.permissions`.
        rate: How often one connection may call it (client-to-server methods; the
            server's limits): ``Rate(10, per=60)``. Past it the call is answered
            TOO_MANY_REQUESTS; the connection's own rate applies as well.
        deadline: Seconds the server's handler may run before it is cancelled and the
            caller answered SERVER_ERROR "Deadline exceeded"; overrides the App's
            ``Limits.deadline`` (``math.inf``: no deadline).
        idempotent: Running it twice has the effect of running it once (a read, a
            "set to", a join). A client sends it again, within its timeout, when the
            connection drops before the answer comes: see :doc:`/reconnect`. Leave it
            False for anything that must not happen twice (a payment, a chat message).
    """
    attach = _decorator(MethodKind.REQUEST, name, errors, permission, rate, deadline, idempotent=idempotent)
    return attach if fn is None else attach(fn)


@overload
def notify(fn: NF, /) -> NF: ...
@overload
def notify(
    *,
    name: str | None = None,
    permission: Permission | None = None,
    rate: Rate | None = None,
    deadline: float | None = None,
) -> Callable[[NF], NF]: ...
def notify(
    fn: NF | None = None,
    /,
    *,
    name: str | None = None,
    permission: Permission | None = None,
    rate: Rate | None = None,
    deadline: float | None = None,
) -> NF | Callable[[NF], NF]:
    """Declare a fire-and-forget method: no answer ever comes back.

    The stub must return ``None``. Awaiting the call on a proxy waits only until the frame
    is handed to the transport (flow control), never for the peer.

    Args:
        name: The method's wire name, as for :func:`request`.
        permission: What the caller needs, as for :func:`request`; a message that lacks
            it is dropped and reported.
        rate: How often one connection may send it, as for :func:`request`; past it the
            message is dropped and counted.
        deadline: Seconds its handler may run, as for :func:`request`.
    """
    attach = _decorator(MethodKind.NOTIFY, name, (), permission, rate, deadline)
    return attach if fn is None else attach(fn)


def watch(
    topic: str,
    *,
    name: str | None = None,
    errors: Iterable[type[ApiError[Any]]] = (),
    permission: Permission | None = None,
    rate: Rate | None = None,
) -> Callable[[F], F]:
    """Declare a subscription: the client asks to watch ``topic`` for the key it passes
    (a document id, a device id), and gets the pushes sent to that topic until it
    unwatches or disconnects::

        @grestws.watch("document", errors=[NotFoundError])
        async def watch_document(self, doc_id: str) -> None: ...

    The stub takes the key as its one argument and returns None. It is a request: the
    server's method is the access check, run with the typed key; raising an ApiError
    (``ForbiddenError`` when refused, or a declared one) answers the client with it and
    subscribes nothing; returning subscribes the connection. The server pushes with
    ``await app.rooms.send_to_topic("document", doc_id, DocClient.changed, change)``.

    Args:
        topic: The topic's name (the same on the matching :func:`unwatch`).
        name, errors, permission, rate: As for :func:`request`.
    """
    return _decorator(MethodKind.REQUEST, name, errors, permission, rate, None, topic, True, True)


def unwatch(
    topic: str,
    *,
    name: str | None = None,
    permission: Permission | None = None,
    rate: Rate | None = None,
) -> Callable[[F], F]:
    """Declare the end of a subscription declared with :func:`watch`: the client stops
    getting ``topic``'s pushes for the key it passes. A request answered once the
    connection has left; the server need not implement it (if it does, its method runs
    first). Disconnecting ends every subscription as well.

    Args:
        topic: The topic's name, as on :func:`watch`.
        name, permission, rate: As for :func:`request`.
    """
    return _decorator(MethodKind.REQUEST, name, (), permission, rate, None, topic, False, True)


def camel(name: str) -> str:
    """``send_message`` -> ``sendMessage``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_LEAVES = (msgspec.inspect.RawType,)


def nests_freely(tp: Any) -> bool:
    """Whether a value decoded as ``tp`` can nest as deeply as the JSON it came from: the
    type has ``Any`` somewhere, a custom type, or refers to itself. Other types bound the
    nesting of what they decode, so a payload nested deeper than the type fails validation
    (or, in a skipped unknown field, stops msgspec with a RecursionError) before it can
    reach a handler.
    """
    try:
        info = msgspec.inspect.type_info(tp)
    except Exception:  # a type msgspec cannot describe: assume the worst
        return True
    return _nests(info, set())


def _nests(info: msgspec.inspect.Type, path: set[int]) -> bool:
    if isinstance(info, (msgspec.inspect.AnyType, msgspec.inspect.CustomType)):
        return True
    if isinstance(info, _LEAVES):
        return False
    children: list[msgspec.inspect.Type] = []
    if isinstance(
        info,
        (
            msgspec.inspect.ListType,
            msgspec.inspect.SetType,
            msgspec.inspect.FrozenSetType,
            msgspec.inspect.VarTupleType,
        ),
    ):
        children = [info.item_type]
    elif isinstance(info, msgspec.inspect.TupleType):
        children = list(info.item_types)
    elif isinstance(info, msgspec.inspect.DictType):
        children = [info.key_type, info.value_type]
    elif isinstance(info, msgspec.inspect.UnionType):
        children = list(info.types)
    elif isinstance(
        info,
        (
            msgspec.inspect.StructType,
            msgspec.inspect.DataclassType,
            msgspec.inspect.TypedDictType,
            msgspec.inspect.NamedTupleType,
        ),
    ):
        if id(info) in path:
            return True  # a type that contains itself: as deep as the data
        path = path | {id(info)}
        children = [field.type for field in info.fields]
    return any(_nests(child, path) for child in children)


class MethodSpec:
    """Everything the session needs to send or serve one method, built once.

    Attributes:
        py_name: The Python name of the stub (``send_message``).
        wire_name: The name after the contract's name on the wire (``sendMessage``).
        path: The full routing key, ``<Contract>.<wire_name>``.
        kind: :class:`MethodKind`.
        input_type: The type of the single argument, or ``None`` for a method without one.
        result_type: The success type of a request; ``None`` when it returns nothing.
        errors: The declared errors by wire type (the implicit ones included).
    """

    __slots__ = (
        "deadline",
        "decode_input",
        "decode_result",
        "deep_input",
        "deep_result",
        "error_classes",
        "errors",
        "explicit_error_classes",
        "function",
        "gated",
        "has_input",
        "has_result",
        "idempotent",
        "input_type",
        "kind",
        "message_key",
        "param_name",
        "path",
        "path_bytes",
        "permission",
        "permission_declared",
        "prefix",
        "py_name",
        "rate",
        "result_type",
        "topic",
        "watching",
        "wire_name",
    )

    def __init__(self, contract_name: str, fn: Callable[..., Any], *, rename: str | None = None) -> None:
        options: MethodOptions | None = getattr(fn, _OPTIONS_ATTR, None)
        where = f"{contract_name}.{fn.__name__}"
        if options is None:
            raise ContractError(f"{where}: decorate the stub with @request or @notify")
        if not inspect.iscoroutinefunction(fn):
            raise ContractError(f"{where}: contract methods are 'async def' stubs")
        self.function = fn
        self.py_name = fn.__name__
        self.permission = PUBLIC if options.permission is None else options.permission
        self.permission_declared = options.permission is not None
        self.gated = not self.permission.public
        self.rate = options.rate
        self.deadline = options.deadline
        self.kind = options.kind
        self.topic = options.topic
        """The topic a @watch or @unwatch method subscribes to, else None."""
        self.watching = options.watching
        """True for @watch, False for @unwatch (meaningful only with a topic)."""
        self.idempotent = options.idempotent
        """Whether a client may send it again after a dropped connection (watches are)."""
        if options.name is not None:
            self.wire_name = options.name
        else:
            self.wire_name = camel(fn.__name__) if rename == "camel" else fn.__name__
        if ":" in self.wire_name or "." in self.wire_name or not self.wire_name:
            raise ContractError(f"{where}: wire name {self.wire_name!r} cannot contain ':' or '.'")
        self.path = f"{contract_name}.{self.wire_name}"
        self.path_bytes = self.path.encode()

        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception as exc:
            raise ContractError(
                f"{where}: cannot resolve its annotations ({exc}); declare the types the "
                "contract uses at module level"
            ) from exc
        params = list(inspect.signature(fn).parameters.values())[1:]
        if len(params) > 1 or any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
            raise ContractError(f"{where}: a contract method takes at most one positional argument")
        self.has_input = bool(params)
        self.param_name = params[0].name if params else None
        self.input_type: Any = hints.get(params[0].name, Any) if params else None
        self.result_type: Any = hints.get("return", Any)
        if self.result_type is type(None):
            self.result_type = None
        self.has_result = self.result_type is not None
        if self.kind is MethodKind.NOTIFY and self.has_result:
            raise ContractError(f"{where}: a @notify method returns None")
        if self.topic is not None and (not self.has_input or self.has_result):
            raise ContractError(
                f"{where}: a @watch or @unwatch method takes the topic's key and returns None"
            )

        declared: dict[str, type[ApiError[Any]]] = {cls.type: cls for cls in IMPLICIT_ERRORS}
        for cls in typing.cast("tuple[object, ...]", options.errors):
            if not (isinstance(cls, type) and issubclass(cls, ApiError)):
                raise ContractError(f"{where}: errors must be ApiError subclasses, got {cls!r}")
            declared[cls.type] = cls
        self.errors = declared
        self.error_classes = tuple(declared.values())
        self.explicit_error_classes = tuple(options.errors)

        try:
            self.decode_input: Callable[[bytes | memoryview], Any] = (
                msgspec.json.Decoder(self.input_type).decode if self.has_input else _nothing
            )
            """Decode and validate an incoming argument (``None`` for a method without one).
            Raises ``msgspec.ValidationError`` or ``msgspec.DecodeError`` if it does not fit."""
            self.decode_result: Callable[[bytes | memoryview], Any] = (
                msgspec.json.Decoder(self.result_type).decode if self.has_result else _nothing
            )
            """Decode and validate the success data of a response (``None`` if the method
            has none)."""
            for error_cls in declared.values():
                error_cls.data_decoder()
        except TypeError as exc:
            raise ContractError(f"{where}: msgspec cannot handle its types: {exc}") from exc
        self.deep_input = self.has_input and nests_freely(self.input_type)
        self.deep_result = self.has_result and nests_freely(self.result_type)
        kind_letter = FrameType.REQ if self.kind is MethodKind.REQUEST else FrameType.MSG
        self.prefix = kind_letter.value + b":" + self.path.encode() + b":"
        self.message_key = message_key(self.path)
        """How a message to it starts, up to the ``::`` of its empty id field."""

    def __repr__(self) -> str:
        return f"<MethodSpec {self.kind.value} {self.path}>"

    def error_class(self, type_name: str) -> type[ApiError[Any]] | None:
        """The error class a response's ``type`` names: declared first, then standard."""
        return self.errors.get(type_name) or STANDARD_ERRORS.get(type_name)

    def declares(self, error: ApiError[Any]) -> bool:
        """Whether a handler may send ``error`` as it is.

        An error received from the peer (a failed nested call) counts only if the method
        lists its class explicitly: ROUTE_NOT_FOUND of a nested call is not the caller's.
        """
        if error.remote:
            return isinstance(error, self.explicit_error_classes)
        return isinstance(error, self.error_classes)


def _nothing(data: bytes | memoryview) -> None:
    """The decoder of a method without an argument, or without a success value."""
    return
