"""The AsyncAPI 3.0 document of an App: a channel per schema, an operation per method.

The document describes the **server**: an operation whose ``action`` is ``receive`` is a
call a client makes (a frame the server reads), one whose action is ``send`` a call the
server makes on a client. Ids are stable names: the channel of a contract served once is
the contract's name (``ChatApi``); its operations are ``ChatApi.handshake``,
``ChatApi.ping``, ``ChatApi.clientToServer.<method>`` and ``ChatApi.serverToClient.<method>``
(wire names); a request's answers are the messages ``<operation>.result`` and
``<operation>.error``.
"""

from __future__ import annotations

import collections
import inspect
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from grestws.app import App, Route
from grestws.asyncapi.schemas import (
    SCHEMAS,
    PayloadSchemas,
    component_name,
    error_context,
    error_envelope,
    frame_headers,
    result_envelope,
)
from grestws.auth import BearerAuth
from grestws.contract.contract import SocketSchema
from grestws.contract.methods import MethodKind, MethodSpec
from grestws.exceptions import (
    ApiError,
    ForbiddenError,
    NotAuthorizedError,
    ServerError,
    UnavailableError,
    ValidationError,
)
from grestws.permissions import AllOf, AnyOf, Permission, Scope, permission_to_builtins

__all__ = ("ASYNCAPI_VERSION", "PROTOCOL_VERSION", "asyncapi_document", "dumps", "server_object")

ASYNCAPI_VERSION = "3.0.0"
PROTOCOL_VERSION = 1
"""The version of the grestws wire protocol the documents describe (``docs/protocol.md``)."""

_ID = re.compile(r"[^A-Za-z0-9_\-]+")
_HANDSHAKE_ERRORS: tuple[type[ApiError[Any]], ...] = (
    NotAuthorizedError,
    ForbiddenError,
    ValidationError,
    ServerError,
    UnavailableError,
)
_CONTEXT = "grestws.ErrorContext"
_ANY_ERROR = "grestws.ErrorEnvelope"
_REQUEST_ID = "grestws.requestId"
_CORRELATION = {"$ref": f"#/components/correlationIds/{_REQUEST_ID}"}

_DESCRIPTION = """\
The WebSocket API of a grestws App, described from the server's point of view: a \
`receive` operation is a call a client makes on the server, a `send` operation one the \
server makes on a client.

Every message is one WebSocket text frame `<type>:<path>:<id>:<data>` (grestws wire \
protocol, version 1). A message's `payload` is the JSON `<data>`; its `headers` stand for \
the fields before it, which are not JSON; `x-grestws-frame` gives the frame type and path. \
A request (`r`) is answered by exactly one `s` frame with the same path and id (the \
operation's `reply`): a success envelope, or an error envelope of one of the types its \
error message lists. A notification (`m`) is never answered.

Each connection starts with the handshake: `h`, answered by `k`, or by `x` and a close \
with 4001. `x-grestws-permission` is what an identity needs: `"*"` anyone, a scope's \
name, or `{"all": [...]}` / `{"any": [...]}`."""


def asyncapi_document(
    app: App,
    *,
    title: str | None = None,
    version: str = "1.0.0",
    servers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every schema ``app`` serves, as plain data.

    Args:
        app: The App, with all its routes added.
        title: The document's title; by default the names of the contracts, in the order
            the App serves them.
        version: The version of the API (``info.version``), not of grestws or AsyncAPI.
        servers: Where the App is served, by name: ``{"production": "wss://chat.example.com"}``.
            A URL's path is where the schemas' paths start (an ASGI mount's prefix).

    Returns:
        A new document: dicts, lists, strings, numbers, booleans and ``None`` only, no
        object in two places, built in the same order every time (:func:`dumps` writes
        it with sorted keys).

    Raises:
        ValueError: a server's name is not one AsyncAPI takes (letters, digits, ``_``,
            ``-``), or its URL is not ``ws://`` or ``wss://`` with a host.
    """
    document = _Builder(app.routes.values()).document(title=title, version=version, servers=servers or {})
    # A copy that shares no object between its parts (nor with the builder's constants).
    copy: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(document))
    return copy


def dumps(document: Mapping[str, Any]) -> str:
    """``document`` as JSON: two-space indents, sorted keys, a final newline; the same
    text for the same document, byte for byte."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Channel:
    """One schema of the App: its channel's id and messages, and its bearer checks."""

    def __init__(self, channel_id: str, schema: SocketSchema[Any, Any, Any]) -> None:
        self.id = channel_id
        self.schema = schema
        self.name = schema.contract.name
        self.ref = {"$ref": f"#/channels/{channel_id}"}
        self.messages: dict[str, dict[str, str]] = {}
        self.bearers = [m for m in schema.middleware if isinstance(m, BearerAuth)]
        self.schemes: list[dict[str, str]] = []

    def message(self, message_id: str) -> dict[str, str]:
        """Add a message of the components to the channel; the reference an operation
        makes to it."""
        self.messages[message_id] = {"$ref": f"#/components/messages/{message_id}"}
        return {"$ref": f"#/channels/{self.id}/messages/{message_id}"}


class _Builder:
    """Builds one document: the payload schemas first (msgspec, all at once), then the
    channels with their messages and operations."""

    def __init__(self, routes: Iterable[Route[Any, Any]]) -> None:
        self.served = list(routes)
        self.routes = sorted(self.served, key=lambda route: route.schema.path)
        self.schemas: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.security: dict[str, Any] = {}
        self._error_names: dict[type[ApiError[Any]], str] = {}
        errors = set(_HANDSHAKE_ERRORS)
        types: list[Any] = []
        for route in self.routes:
            if route.schema.query is not None:
                types.append(route.schema.query)
            for spec in _methods(route.schema):
                types += [spec.input_type] if spec.has_input else []
                types += [spec.result_type] if spec.has_result else []
                errors.update(spec.error_classes if spec.kind is MethodKind.REQUEST else ())
        self.errors = sorted(errors, key=_error_key)
        types += [cls.data_type for cls in self.errors if cls.data_type is not None]
        self.payloads = PayloadSchemas(types)
        self.schemas.update(self.payloads.components)
        self._error_schemas()

    def _error_schemas(self) -> None:
        self.schemas[_CONTEXT] = error_context()
        self.schemas[_ANY_ERROR] = error_envelope(
            "Error envelope",
            "An error of any type; its `data` depends on the type.",
            {"type": "string", "pattern": "^[A-Z][A-Za-z0-9_]*$"},
            {"type": "integer"},
            {},
            _CONTEXT,
        )
        by_type = collections.Counter(cls.type for cls in self.errors)
        for cls in self.errors:
            name = f"grestws.ErrorEnvelope.{cls.type}"
            if by_type[cls.type] > 1:  # two classes of one wire type: tell them apart
                name = component_name(f"{name}.{cls.__module__}.{cls.__qualname__}")
            self._error_names[cls] = name
            self.schemas[name] = error_envelope(
                f"{cls.type} ({cls.status_code})",
                _own_doc(cls) or f"The error {cls.type}.",
                {"const": cls.type},
                {"type": "integer", "const": cls.status_code},
                None if cls.data_type is None else self.payloads.of(cls.data_type),
                _CONTEXT,
            )

    def error_ref(self, cls: type[ApiError[Any]]) -> dict[str, str]:
        return {"$ref": SCHEMAS + self._error_names[cls]}

    def frame(self, letter: str) -> dict[str, str]:
        """A reference to the headers schema of a frame type, added on first use."""
        name = f"grestws.FrameHeaders.{letter}"
        if name not in self.schemas:
            self.schemas[name] = frame_headers(letter)
        return {"$ref": SCHEMAS + name}

    def document(self, *, title: str | None, version: str, servers: Mapping[str, str]) -> dict[str, Any]:
        described = {name: server_object(name, url) for name, url in servers.items()}
        channels: dict[str, Any] = {}
        for channel in self._channels():
            channel.schemes = self._schemes(channel)
            self._handshake(channel)
            for spec in channel.schema.contract.client_to_server:
                self._method(channel, "clientToServer", spec, "receive")
            for spec in channel.schema.contract.server_to_client:
                self._method(channel, "serverToClient", spec, "send")
            channels[channel.id] = self._channel(channel)
        if title is None:
            title = ", ".join(dict.fromkeys(route.schema.contract.name for route in self.served))
        document: dict[str, Any] = {
            "asyncapi": ASYNCAPI_VERSION,
            "info": {"title": title or "grestws App", "version": version, "description": _DESCRIPTION},
            "defaultContentType": "application/json",
            "x-grestws-protocol": PROTOCOL_VERSION,
        }
        if described:
            document["servers"] = described
        document["channels"] = channels
        document["operations"] = self.operations
        components: dict[str, Any] = {"schemas": self.schemas, "messages": self.messages}
        if self.operations:
            components["correlationIds"] = {
                _REQUEST_ID: {
                    "location": "$message.header#/id",
                    "description": "The frame's id: the `s` that answers an `r` carries the id of the `r`.",
                }
            }
        if self.security:
            components["securitySchemes"] = self.security
        document["components"] = components
        return document

    def _channels(self) -> Iterator[_Channel]:
        served = collections.Counter(route.schema.contract.name for route in self.routes)
        taken: set[str] = set()
        for route in self.routes:
            name = route.schema.contract.name
            base = name if served[name] == 1 else f"{name}_{route.schema.path.strip('/')}"
            yield _Channel(_unique(_ID.sub("_", base), taken), route.schema)

    def _channel(self, channel: _Channel) -> dict[str, Any]:
        schema = channel.schema
        binding: dict[str, Any] = {"method": "GET", "bindingVersion": "0.1.0"}
        description = (
            f"A connection to the contract {channel.name}, opened at `{schema.path}`. The client "
            "sends `h` at once; the server answers `k` (accepted) or `x` (refused, then close 4001)."
        )
        if schema.query is not None:
            # The binding wants an object schema with properties, inline.
            binding["query"] = {"type": "object", "properties": {}, **self.payloads.inline(schema.query)}
            description += (
                ' The query parameters are coerced to their types (`"5"` to 5, `"true"` to true); '
                "parameters that do not fit close the connection with 4000 before `h` is read."
            )
        result: dict[str, Any] = {
            "address": schema.path,
            "title": f"{channel.name} at {schema.path}",
            "description": description,
            "messages": channel.messages,
            "bindings": {"ws": binding},
            "x-grestws-contract": channel.name,
        }
        if schema.permission is not None:
            result["x-grestws-permission"] = permission_to_builtins(schema.permission)
        return result

    def _schemes(self, channel: _Channel) -> list[dict[str, str]]:
        """The security schemes of the channel's bearer checks (added to the components)."""
        refs: list[dict[str, str]] = []
        for bearer in channel.bearers:
            header = bearer.header
            scheme_id = "bearer" if header == "authorization" else _ID.sub("_", f"bearer-{header}")
            scheme = self.security.setdefault(
                scheme_id,
                {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        f"A bearer token in the `{header}` header of the `h` frame "
                        f'(`{{"{header}": "Bearer <token>"}}`), not of the HTTP upgrade: browsers '
                        "cannot set the upgrade's headers. It is checked once, at the handshake; "
                        "a missing or rejected token is refused with `x` NOT_AUTHORIZED. "
                        "`x-grestws-scopes` lists the scopes the operations' `x-grestws-permission` name."
                    ),
                    "x-grestws-header": header,
                    "x-grestws-scopes": [],
                },
            )
            scheme["x-grestws-scopes"] = sorted(set(scheme["x-grestws-scopes"]) | _scopes(channel.schema))
            refs.append({"$ref": f"#/components/securitySchemes/{scheme_id}"})
        return refs

    def _handshake(self, channel: _Channel) -> None:
        headers: dict[str, Any] = {
            "type": "object",
            "description": "The handshake headers: string values only.",
            "additionalProperties": {"type": "string"},
            "properties": {},
        }
        required = [bearer.header for bearer in channel.bearers if not bearer.allow_anonymous]
        for bearer in channel.bearers:
            headers["properties"][bearer.header] = {"type": "string", "examples": ["Bearer <token>"]}
        if required:
            headers["required"] = required
        h = self._frame_message(channel, "handshake", "h", "Handshake", "The client's first frame.", headers)
        k = self._frame_message(
            channel,
            "handshakeOk",
            "k",
            "Handshake accepted",
            "The connection is accepted: calls may follow. A reader ignores the data.",
            {"type": ["null", "object"]},
        )
        refusals = [*map(self.error_ref, _HANDSHAKE_ERRORS), {"$ref": SCHEMAS + _ANY_ERROR}]
        x = self._frame_message(
            channel,
            "handshakeError",
            "x",
            "Handshake refused",
            'The connection is refused; the server then closes it with 4001 "Handshake failed". '
            "The application's handshake code may refuse it with an error of its own.",
            {"anyOf": refusals},
        )
        operation = self._operation(
            channel, "receive", "handshake", "Open the connection: `h`, answered by `k` or `x`."
        )
        operation["messages"] = [h]
        operation["reply"] = {"channel": channel.ref, "messages": [k, x]}
        if channel.schemes and not all(bearer.allow_anonymous for bearer in channel.bearers):
            operation["security"] = channel.schemes
        if channel.schema.permission is not None:
            operation["x-grestws-permission"] = permission_to_builtins(channel.schema.permission)
        self.operations[f"{channel.id}.handshake"] = operation

        p = self._frame_message(
            channel, "ping", "p", "Ping", "A liveness probe (browsers cannot send protocol pings)."
        )
        o = self._frame_message(channel, "pong", "o", "Pong", "The answer to `p`.")
        operation = self._operation(
            channel, "receive", "ping", "Liveness: `p`, answered by `o`; never reaches a handler."
        )
        operation["messages"] = [p]
        operation["reply"] = {"channel": channel.ref, "messages": [o]}
        self.operations[f"{channel.id}.ping"] = operation

    def _operation(self, channel: _Channel, action: str, title: str, summary: str | None) -> dict[str, Any]:
        operation: dict[str, Any] = {"action": action, "channel": channel.ref, "title": title}
        if summary is not None:
            operation["summary"] = summary
        operation["tags"] = [{"name": channel.name}]
        return operation

    def _frame_message(
        self, channel: _Channel, name: str, letter: str, title: str, summary: str, payload: Any = None
    ) -> dict[str, str]:
        """A message of the handshake or of liveness: a frame without path or id."""
        message: dict[str, Any] = {
            "name": name,
            "title": f"{title} ({letter})",
            "summary": summary,
            "headers": self.frame(letter),
            "x-grestws-frame": {"type": letter},
        }
        if payload is not None:
            message["payload"] = payload
        self.messages[f"{channel.id}.{name}"] = message
        return channel.message(f"{channel.id}.{name}")

    def _method(self, channel: _Channel, half: str, spec: MethodSpec, action: str) -> None:
        operation_id = f"{channel.id}.{half}.{_ID.sub('_', spec.wire_name)}"
        request = spec.kind is MethodKind.REQUEST
        letter = "r" if request else "m"
        summary, description = _docstring(spec.function)
        call: dict[str, Any] = {"name": spec.path, "title": f"{spec.wire_name} ({letter})"}
        call |= _described(summary, description)
        call["headers"] = self.frame(letter)
        if request:
            call["correlationId"] = _CORRELATION
        if spec.has_input:
            call["payload"] = self.payloads.of(spec.input_type)
        call["x-grestws-frame"] = {
            "type": letter,
            "path": spec.path,
            "data": "json" if spec.has_input else "empty",
        }
        self.messages[operation_id] = call

        operation = self._operation(channel, action, spec.wire_name, summary)
        operation |= _described(None, description)
        operation["messages"] = [channel.message(operation_id)]
        operation["x-grestws-path"] = spec.path
        operation["x-grestws-kind"] = spec.kind.value
        if request:
            operation["reply"] = {
                "channel": channel.ref,
                "messages": self._replies(channel, operation_id, spec),
            }
            operation["x-grestws-errors"] = sorted({cls.type for cls in spec.explicit_error_classes})
        if half == "clientToServer":  # server-to-client methods are never gated
            operation["x-grestws-permission"] = permission_to_builtins(spec.permission)
            if spec.gated and channel.schemes:
                operation["security"] = channel.schemes
        if spec.rate is not None:
            operation["x-grestws-rate"] = {
                "count": spec.rate.count,
                "per": spec.rate.per,
                "burst": spec.rate.capacity,
            }
        if spec.deadline is not None:
            operation["x-grestws-deadline"] = spec.deadline
        if spec.idempotent:
            operation["x-grestws-idempotent"] = True
        if spec.topic is not None:
            operation["x-grestws-topic"] = {"name": spec.topic, "watch": spec.watching}
        self.operations[operation_id] = operation

    def _replies(self, channel: _Channel, operation_id: str, spec: MethodSpec) -> list[dict[str, str]]:
        """The two messages of the ``s`` frame that answers a request: success and error."""
        result = result_envelope(
            f"{spec.wire_name} result", self.payloads.of(spec.result_type) if spec.has_result else None
        )
        errors = sorted(spec.error_classes, key=_error_key)
        answers = {
            "result": ("result", "The success envelope of the answer.", result, True),
            "error": (
                "error",
                "An error envelope of the answer: " + ", ".join(cls.type for cls in errors) + ".",
                {"oneOf": [self.error_ref(cls) for cls in errors]},
                False,
            ),
        }
        refs: list[dict[str, str]] = []
        for suffix, (what, summary, payload, success) in answers.items():
            self.messages[f"{operation_id}.{suffix}"] = {
                "name": spec.path,
                "title": f"{spec.wire_name} {what} (s)",
                "summary": summary,
                "headers": self.frame("s"),
                "correlationId": _CORRELATION,
                "payload": payload,
                "x-grestws-frame": {"type": "s", "path": spec.path, "success": success},
            }
            refs.append(channel.message(f"{operation_id}.{suffix}"))
        return refs


def _methods(schema: SocketSchema[Any, Any, Any]) -> Iterator[MethodSpec]:
    yield from schema.contract.client_to_server
    yield from schema.contract.server_to_client


def _error_key(cls: type[ApiError[Any]]) -> tuple[str, str, str]:
    return (cls.type, cls.__module__, cls.__qualname__)


def _scopes(schema: SocketSchema[Any, Any, Any]) -> set[str]:
    """Every scope a permission of ``schema`` (its own, its methods') names."""
    found: set[str] = set()

    def visit(permission: Permission | None) -> None:
        if isinstance(permission, Scope):
            found.add(permission.name)
        elif isinstance(permission, (AllOf, AnyOf)):
            for part in permission.parts:
                visit(part)

    visit(schema.permission)
    for spec in schema.contract.client_to_server:
        visit(spec.permission)
    return found


def _docstring(function: object) -> tuple[str | None, str | None]:
    """The first paragraph of a docstring on one line, and the whole docstring when it
    says more than that."""
    doc = inspect.getdoc(function)
    if not doc:
        return None, None
    first, *rest = doc.split("\n\n", 1)
    return " ".join(first.split()), (doc if rest else None)


def _own_doc(cls: type[Any]) -> str | None:
    """The docstring of ``cls`` itself, not one it inherits."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def _described(summary: str | None, description: str | None) -> dict[str, str]:
    found = {"summary": summary, "description": description}
    return {key: value for key, value in found.items() if value is not None}


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name or "root", 1
    while candidate in taken:
        n += 1
        candidate = f"{name or 'root'}_{n}"
    taken.add(candidate)
    return candidate


def server_object(name: str, url: str) -> dict[str, Any]:
    """The AsyncAPI Server Object of a server named ``name`` at ``url`` (``wss://host:port/prefix``).

    Raises:
        ValueError: ``name`` is not letters, digits, ``_`` and ``-``, or ``url`` is not
            ``ws://`` or ``wss://`` with a host (and without query or fragment).
    """
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ValueError(f"a server name is letters, digits, '_' and '-', not {name!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"server {name}: expected a ws:// or wss:// URL with a host, got {url!r}")
    server: dict[str, Any] = {"host": parts.netloc, "protocol": parts.scheme}
    if parts.path.rstrip("/"):
        server["pathname"] = parts.path.rstrip("/")
    return server
