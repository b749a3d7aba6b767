"""OpenTelemetry traces of calls, with opentelemetry-api (``pip install 'grestws[tracing]'``).

A span for every call on both sides, named ``{contract}/{method}`` (``ChatApi/sendMessage``)
with OpenTelemetry's RPC attributes::

    tracing = Tracing()                                      # the global tracer provider
    tracing.instrument(app)                                  # the server's spans
    client = grestws.Client(url, ChatApi.use(tracing.propagation()), interceptors=[tracing.intercept])

The client puts its trace context (W3C ``traceparent``, or what the global propagator
writes) in the ``h`` frame when it connects; the server's spans of that connection are
children of it, so one trace holds the client's call and the server's handling of it.

Spans:

- kind ``SERVER`` for a request served, ``CONSUMER`` for a fire-and-forget call served,
  ``CLIENT`` for a request made, ``PRODUCER`` for a fire-and-forget call made;
- ``rpc.system`` ``grestws``, ``rpc.service`` the contract, ``rpc.method`` the wire name,
  ``grestws.connection.id``, ``grestws.request_id`` (a served request's wire id), and
  ``network.peer.address`` / ``network.peer.port`` on the server;
- a failed call: status ``ERROR`` and ``error.type`` (the error's wire type, a declared
  one included, or ``TIMEOUT``, ``CONNECTION_LOST``, ...: :func:`grestws.outcome`); an
  exception that is no :class:`~grestws.ApiError` is recorded on the span as well.

The span is current while the call runs: spans a handler starts are its children, and a
call a handler makes on its client is a ``CLIENT`` span under the ``SERVER`` one.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("grestws.tracing needs opentelemetry-api: pip install 'grestws[tracing]'") from exc

from grestws.connections import ServerConnection
from grestws.context import Connection
from grestws.contract.methods import MethodKind
from grestws.exceptions import ApiError
from grestws.interceptors import Call, Proceed, outcome
from grestws.middleware import ClientHandshake, Middleware

if TYPE_CHECKING:
    from grestws.app import App

__all__ = ("TraceContext", "Tracing")

_KINDS = {
    ("incoming", MethodKind.REQUEST): SpanKind.SERVER,
    ("incoming", MethodKind.NOTIFY): SpanKind.CONSUMER,
    ("outgoing", MethodKind.REQUEST): SpanKind.CLIENT,
    ("outgoing", MethodKind.NOTIFY): SpanKind.PRODUCER,
}


class Tracing:
    """Spans of calls, for the server (:meth:`instrument`) and for clients
    (:meth:`intercept` and :meth:`propagation`).

    Args:
        tracer_provider: Where the spans go (the global provider by default).
        propagator: How trace context travels in the handshake (the global propagator by
            default: W3C Trace Context and Baggage unless configured otherwise).

    Concurrency: one instance serves any number of connections and calls at once.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        from grestws import __version__

        self.tracer = trace.get_tracer("grestws", __version__, tracer_provider)
        self.propagator = propagator
        self._parents: weakref.WeakKeyDictionary[Connection, otel_context.Context] = (
            weakref.WeakKeyDictionary()
        )

    def instrument(self, app: App) -> App:
        """Trace every call ``app``'s connections serve and make (call it before ``app``
        serves); returns it. Its interceptor goes first: it sees every call, those that
        other interceptors short-circuit included."""
        app.interceptors.insert(0, self.intercept)
        return app

    def propagation(self) -> TraceContext:
        """The client's middleware that carries its trace context to the server:
        ``schema.use(tracing.propagation())``."""
        return TraceContext(self.propagator)

    async def intercept(self, call: Call, proceed: Proceed) -> Any:
        """The interceptor: one span around the call."""
        method = call.method
        service = method.path[: -len(method.wire_name) - 1]
        conn = call.connection
        attributes: dict[str, str | int] = {
            "rpc.system": "grestws",
            "rpc.service": service,
            "rpc.method": method.wire_name,
            "grestws.connection.id": conn.id,
        }
        if call.request_id is not None:
            attributes["grestws.request_id"] = call.request_id
        parent = None
        if call.direction == "incoming" and call.side == "server":
            parent = self._parent(conn)
            attributes.update(_peer(conn.remote_address))
        span = self.tracer.start_span(
            f"{service}/{method.wire_name}",
            context=parent,
            kind=_KINDS[call.direction, method.kind],
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span))  # current while the call runs
        try:
            return await proceed()
        except BaseException as exc:
            error_type = outcome(exc)
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, error_type))
            if not isinstance(exc, ApiError):
                span.record_exception(exc)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    def _parent(self, conn: Connection) -> otel_context.Context | None:
        """The trace context the client sent in its handshake (extracted once)."""
        key: Connection = conn  # weakly: the context goes with its connection
        if not isinstance(conn, ServerConnection):
            return None
        found = self._parents.get(key)
        if found is None:
            propagator = self.propagator or propagate.get_global_textmap()
            headers: Mapping[str, str] = conn.handshake_headers
            found = self._parents[key] = propagator.extract(dict(headers), context=otel_context.Context())
        return found


def _peer(address: object) -> dict[str, str | int]:
    """The peer's address attributes, from a transport's ``(host, port, ...)``."""
    if isinstance(address, tuple):
        parts = cast("tuple[object, ...]", address)
        if len(parts) >= 2 and isinstance(parts[1], int):
            return {"network.peer.address": str(parts[0]), "network.peer.port": parts[1]}
    return {}


class TraceContext(Middleware):
    """Client-side handshake middleware: writes the current trace context into the ``h``
    frame's headers on every connection (``traceparent`` and ``tracestate`` with W3C
    Trace Context). A reconnect carries the context the client was connected in.

    Args:
        propagator: The propagator (the global one by default).
    """

    def __init__(self, propagator: TextMapPropagator | None = None) -> None:
        self.propagator = propagator

    def update_handshake(self, handshake: ClientHandshake) -> None:
        propagator = self.propagator or propagate.get_global_textmap()
        propagator.inject(handshake.headers)  # pyright: ignore[reportArgumentType]  # the default setter's typing
