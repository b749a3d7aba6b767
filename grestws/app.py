"""What a server serves: schemas at URL paths with their handlers, and the settings.

:class:`App` owns the life of one server-side connection from the first frame on (the
handshake, the session, the close), independent of the transport, so the websockets server
of :mod:`grestws.server` and later adapters run the same code.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Generic, NamedTuple, TypeVar

import msgspec

from grestws.context import Connection
from grestws.contract.contract import SocketSchema
from grestws.contract.envelopes import error_envelope, new_ref
from grestws.exceptions import (
    ApiError,
    ConnectionClosedError,
    ContractError,
    ForbiddenError,
    InvalidStateError,
    NotAuthorizedError,
    ServerError,
    TooManyRequestsError,
    ValidationError,
)
from grestws.handshake import FirstFrame
from grestws.incidents import PEER_LOG, Incident, IncidentHook, IncidentKind, Incidents
from grestws.limits import Gate, IdentityLimits, Limits
from grestws.middleware import ServerHandshake, overrides
from grestws.origins import OriginPolicy
from grestws.permissions import Identity
from grestws.protocol import codec
from grestws.protocol.frames import (
    CLOSE_HANDSHAKE_FAILED,
    CLOSE_INVALID_QUERY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN_LATER,
    HANDSHAKE_OK,
    Frame,
    FrameType,
)
from grestws.session import Session, Transport

__all__ = ("App", "ConnectRequest", "Route", "ServerConnection")

C2S = TypeVar("C2S")
S2C = TypeVar("S2C")

logger = logging.getLogger("grestws")


_headers_decoder = msgspec.json.Decoder(dict[str, str])
_NO_RESOLVER = "no middleware of the schema identifies an identity"
_STRICT = "once one method declares a permission all must; declare PUBLIC to keep it open"


class Refusal(NamedTuple):
    """Why an upgrade is refused: the HTTP status to answer it with, or the close code
    where the transport can no longer answer HTTP, and a reason."""

    status: HTTPStatus
    close_code: int
    reason: str


class ConnectRequest(msgspec.Struct, frozen=True):
    """The upgrade request a connection was opened with, as the transport saw it.

    Attributes:
        path: The URL path without the query (``/ws/chat``).
        query: The query parameters; a repeated name keeps its last value.
        headers: The HTTP headers of the upgrade request; names are case-insensitive.
        remote_address: The peer's address, or ``None`` when unknown.
    """

    path: str
    query: Mapping[str, str] = msgspec.field(default_factory=dict[str, str])
    headers: Mapping[str, str] = msgspec.field(default_factory=dict[str, str])
    remote_address: Any = None


class ServerConnection(Connection, Generic[S2C]):
    """One client as its handler sees it.

    Attributes:
        outgoing: The typed proxy to the client: ``await conn.outgoing.new_message(msg)``
            sends a fire-and-forget call, ``await conn.outgoing.are_you_there()`` a request.
        request: The upgrade request.
        handshake_headers: The headers the client sent in its ``h`` frame.
        typed_query: The query parsed into the schema's query type (``None`` without one);
            ``schema.query_of(conn)`` gives it typed.
        accepted: True once the handshake succeeded (``k`` sent).
        identity: Who the connection acts for, as the schema's middleware identified it
            at the handshake (``None``: no identity).
    """

    __slots__ = (
        "_on_close",
        "_session",
        "accepted",
        "handshake_headers",
        "identity",
        "outgoing",
        "request",
        "schema",
        "typed_query",
    )

    def __init__(
        self,
        request: ConnectRequest,
        session: Session,
        outgoing: S2C,
        schema: SocketSchema[Any, S2C, Any],
    ) -> None:
        super().__init__(uuid.uuid4().hex, request.path, request.remote_address, "server")
        self.request = request
        self.schema = schema
        self.handshake_headers: Mapping[str, str] = {}
        self.outgoing = outgoing
        self.typed_query: Any = None
        self.identity: Identity | None = None
        self.accepted = False
        self._session = session
        self._on_close: list[Callable[[int | None, str], object]] = []

    @property
    def query(self) -> Mapping[str, str]:
        """The query parameters of the upgrade request."""
        return self.request.query

    @property
    def is_open(self) -> bool:
        """True from the handshake's ``k`` until the connection closes."""
        return self.accepted and not self._session.closed

    def with_timeout(self, timeout: float | None) -> S2C:
        """A proxy like ``outgoing`` whose requests time out after ``timeout`` s (None: never)."""
        proxy: S2C = self._session.outgoing.proxy(self._session, timeout)
        return proxy

    def push(self, frame: bytes) -> bool:
        """Write an encoded fire-and-forget frame to the client now, never waiting: it is
        dropped (and counted) when the client has more than the limits' ``push_buffer``
        unread, and a client over ``max_outgoing_buffer`` is closed with 1013.

        Returns:
            Whether the frame was written.
        """
        return self.accepted and self._session.push(frame)

    def on_close(self, callback: Callable[[int | None, str], object]) -> None:
        """Call ``callback(code, reason)`` once the connection closed (at once if it has)."""
        if self._session.closed:
            callback(self._session.close_code, self._session.close_reason)
        else:
            self._on_close.append(callback)

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close the connection; requests the client has pending fail on its side.

        Safe to call more than once and from any task.
        """
        await self._session.transport.close(code, reason)

    def _closed(self) -> None:
        for callback in self._on_close:
            try:
                callback(self._session.close_code, self._session.close_reason)
            except Exception:
                logger.exception("on_close callback failed")


HandlerFactory = Callable[[ServerConnection[S2C]], C2S]


class Route(Generic[C2S, S2C]):
    """A schema and the factory that makes a handler for each of its connections."""

    def __init__(self, schema: SocketSchema[C2S, S2C, Any], factory: HandlerFactory[S2C, C2S]) -> None:
        self.schema = schema
        self.factory = factory


class App:
    """The schemas a server serves, each at its URL path, and how it serves them.

    Args:
        limits: What every peer is held to: rates, calls in flight, handler deadlines,
            outgoing buffers, connection caps, nesting depth (see :class:`Limits` and
            ``docs/limits.md``). The defaults suit a public server.
        allowed_origins: Browser origins that may open sockets (``"https://app.example.com"``,
            ``"https://*.example.com"``, ``"*"``); others get HTTP 403 at the upgrade.
            Without a list any origin may connect, but a cross-origin upgrade's cookies
            are withheld from middleware, so cookie authentication cannot be hijacked by
            another site (see ``docs/limits.md``).
        on_error: Called with every :class:`~grestws.incidents.Incident`: dropped frames,
            refused calls, limit hits, failed handlers, slow or dead peers. It runs in the
            event loop and must not block; its exceptions are logged.
        handshake_timeout: Seconds to wait for the client's ``h`` frame.
        request_timeout: Default seconds to wait for the client's answer to a server request.
        shutdown_timeout: Seconds that calls in flight get to finish on graceful shutdown.
        max_message_size: Largest incoming frame in bytes; a larger one closes with 1009.
        ping_interval: Seconds of silence from a peer before it is pinged (None: never).
        ping_timeout: Seconds a pinged peer has to send anything before it is dropped; a
            dead peer is released ``ping_interval + ping_timeout`` after its last frame.
        compression: Offer permessage-deflate (off by default: it costs more than it saves
            on small messages).

    Concurrency: one App may be served by several servers at once; its routes must all be
    added before it is served.
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        allowed_origins: Sequence[str] | None = None,
        on_error: IncidentHook | None = None,
        handshake_timeout: float = 5.0,
        request_timeout: float | None = 30.0,
        shutdown_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 10.0,
        compression: bool = False,
    ) -> None:
        self.routes: dict[str, Route[Any, Any]] = {}
        self.limits = Limits() if limits is None else limits
        self.origins = OriginPolicy(allowed_origins)
        self.incidents = Incidents(on_error)
        self.identities = IdentityLimits(self.limits)
        self.handshake_timeout = handshake_timeout
        self.request_timeout = request_timeout
        self.shutdown_timeout = shutdown_timeout
        self.max_message_size = max_message_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.compression = compression

    def add(self, schema: SocketSchema[C2S, S2C, Any], handler: HandlerFactory[S2C, C2S]) -> None:
        """Serve ``schema`` at its path; ``handler(conn)`` makes each connection's handler.

        ``handler`` is usually a class implementing the ``client_to_server`` Protocol whose
        ``__init__`` takes the :class:`ServerConnection`. It runs once per connection,
        after the handshake and before ``k`` is sent; raising an :class:`ApiError` there
        refuses the connection with that error.

        Raises:
            ContractError: another schema is served at the same path.
        """
        if schema.path in self.routes:
            raise ContractError(f"two schemas at {schema.path}")
        self.routes[schema.path] = Route(schema, handler)

    def __repr__(self) -> str:
        return f"<App {sorted(self.routes)}>"

    @property
    def on_error(self) -> IncidentHook | None:
        """The hook that sees every incident (settable)."""
        return self.incidents.hook

    @on_error.setter
    def on_error(self, hook: IncidentHook | None) -> None:
        self.incidents.hook = hook

    def refusal(self, path: str, headers: Mapping[str, str], open_connections: int) -> Refusal | None:
        """Why an upgrade to ``path`` must be refused (reported as an incident), or None.

        Checks the origin against ``allowed_origins`` and ``open_connections`` (the
        server's) against ``limits.max_connections``. Transports that can still answer the
        upgrade send the refusal's HTTP status; the others close with its close code.
        """
        origin = headers.get("origin")
        if not self.origins.allows(origin, headers.get("host")):
            self._refused(f"{path}: origin {origin!r:.100} not allowed")
            return Refusal(HTTPStatus.FORBIDDEN, CLOSE_POLICY, "Origin not allowed")
        cap = self.limits.max_connections
        if cap is not None and open_connections >= cap:
            self._refused(f"{path}: over {cap} connections")
            return Refusal(HTTPStatus.SERVICE_UNAVAILABLE, CLOSE_TRY_AGAIN_LATER, "Too many connections")
        return None

    def _refused(self, message: str) -> None:
        self.incidents.report(Incident(IncidentKind.CONNECTION_REFUSED, message))

    def permission_problems(self) -> list[str]:
        """Why this App must not be served, one line per affected method or schema.

        - A schema whose connect permission or methods need an identity, without a
          middleware that identifies one (``identify``): nothing could ever pass.
        - Strict mode: once any method or schema declares a permission (``PUBLIC``
          included), every client-to-server method must declare one, so that no method
          is left open by omission.
        """
        problems: list[str] = []
        strict = False
        for route in self.routes.values():
            schema = route.schema
            specs = list(schema.contract.client_to_server)
            strict = (
                strict or schema.permission is not None or any(spec.permission_declared for spec in specs)
            )
            if schema.has_resolver:
                continue
            if schema.permission is not None and not schema.permission.public:
                problems.append(f"{schema.path}: the connect permission needs an identity; {_NO_RESOLVER}")
            problems.extend(
                f"{spec.path} at {schema.path}: needs {spec.permission!r}; {_NO_RESOLVER}"
                for spec in specs
                if spec.gated
            )
        if strict:
            for route in self.routes.values():
                problems.extend(
                    f"{spec.path} at {route.schema.path}: declares no permission ({_STRICT})"
                    for spec in route.schema.contract.client_to_server
                    if not spec.permission_declared
                )
        return problems

    def check(self) -> None:
        """Refuse to start: raise if :meth:`permission_problems` finds any.

        Raises:
            ContractError: every problem, one line each.
        """
        problems = self.permission_problems()
        if problems:
            raise ContractError("this App cannot be served:\n  " + "\n  ".join(problems))

    async def handle(
        self, transport: Transport, request: ConnectRequest, live: set[ServerConnection[Any]]
    ) -> None:
        """Run one connection from the first frame to its close.

        The connection is in ``live`` from its first frame until the calls it started have
        ended, so its server can refuse a handshake that completes during shutdown and
        drain or cancel what still runs. Calls still running when the client leaves get
        ``shutdown_timeout`` seconds to end, then they are cancelled. Cancelling this
        closes nothing: the transport adapter closes the transport.

        Raises:
            InvalidStateError: no schema is served at ``request.path``.
        """
        route = self.routes.get(request.path)
        if route is None:
            raise InvalidStateError(f"no schema at {request.path}")
        refusal = self.refusal(request.path, request.headers, len(live))
        if refusal is not None:  # a transport that could not answer the upgrade with HTTP
            await transport.close(refusal.close_code, refusal.reason)
            return
        contract = route.schema.contract
        session = Session(
            transport,
            Connection("", request.path, request.remote_address, "server"),
            incoming=contract.client_to_server,
            outgoing=contract.server_to_client,
            incidents=self.incidents,
            gate=Gate(self.limits),
        )
        schema = route.schema
        conn: ServerConnection[Any] = ServerConnection(
            request, session, contract.server_to_client.proxy(session, self.request_timeout), schema
        )
        session.connection = conn
        if schema.query is not None:
            try:
                conn.typed_query = schema.parse_query(request.query)
            except ValidationError as exc:
                logger.info("%s: refused, %s: %s", request.path, exc.message, exc.data)
                await transport.close(CLOSE_INVALID_QUERY, "Invalid query parameters")
                return
        live.add(conn)
        accepted = False
        try:
            accepted = await self._accept(transport, route, conn)
            if accepted:
                await session.run()
        except ConnectionClosedError as exc:
            session.connection_lost(exc.code, exc.reason)
        finally:
            if conn.accepted:
                conn._closed()
            if conn.identity is not None and session.gate is not None and session.gate.shares_identity:
                self.identities.release(conn.identity.id)
            try:
                # Calls still running once their client is gone get shutdown_timeout to end.
                if not await session.wait_idle(self.shutdown_timeout):
                    session.cancel_tasks()
            except BaseException:
                session.cancel_tasks()
                raise
            finally:
                live.discard(conn)

    async def _admit(
        self, route: Route[Any, Any], conn: ServerConnection[Any], deadline: float
    ) -> ApiError[Any] | None:
        """Run the schema's middleware and the handler factory in the connection's context.

        Returns:
            None when the connection is admitted, else the error that refuses it.
        """
        session = conn._session
        context = session.base_context()
        request = conn.request
        trusted = self.origins.trusts_cookies(request.headers.get("origin"), request.headers.get("host"))
        if not trusted and "cookie" in request.headers and PEER_LOG.allow("cross_origin_cookies"):
            logger.warning(
                "%s: ignored the cookies of an upgrade from origin %.100r; list it in allowed_origins "
                "to let middleware use them",
                conn.path,
                request.headers.get("origin"),
            )
        handshake = ServerHandshake(conn, conn.handshake_headers, cookies_trusted=trusted)
        chain = route.schema.middleware
        loop = asyncio.get_running_loop()
        try:
            for middleware in chain:
                if overrides(middleware, "parse_handshake"):
                    context.run(middleware.parse_handshake, handshake)
            for middleware in chain:
                if overrides(middleware, "process"):
                    task = loop.create_task(middleware.process(handshake), context=context)
                    if not await _admit_step(task, deadline):
                        return ServerError("Handshake timeout")
            for middleware in chain:
                if overrides(middleware, "identify"):
                    found = loop.create_task(middleware.identify(handshake), context=context)
                    if not await _admit_step(found, deadline):
                        return ServerError("Handshake timeout")
                    if (identity := found.result()) is not None:
                        conn.identity = session.identity = identity
                        break
            if conn.identity is not None and session.gate is not None:
                entry = self.identities.acquire(conn.identity.id, time.monotonic())
                if entry is None:
                    self._refused(f"{conn.path}: {conn.identity.id!r:.100} has too many connections")
                    return TooManyRequestsError("Too many connections for this identity", data=None)
                session.gate.share_identity(entry)
            permission = route.schema.permission
            if permission is not None and not permission.allows(conn.identity):
                if conn.identity is None:
                    return NotAuthorizedError("This socket needs an identity")
                return ForbiddenError("This identity may not open this socket")
            session.bind(context.run(route.factory, conn))
        except ApiError as exc:
            return exc
        except Exception as exc:
            ref = new_ref()
            logger.error("%s: handshake failed (ref %s)", conn.path, ref, exc_info=exc)
            return ServerError(ref=ref)
        return None

    async def _accept(
        self, transport: Transport, route: Route[Any, Any], conn: ServerConnection[Any]
    ) -> bool:
        """Run the handshake: wait for ``h``, make the handler, send ``k`` (or ``x`` and close).

        Raises:
            ConnectionClosedError: the client left during the handshake.
        """
        session = conn._session
        handshake = FirstFrame(FrameType.HANDSHAKE, keep=self.limits.max_outgoing_buffer or (1 << 20))
        transport.deliver_to(handshake.receive)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.handshake_timeout
        error: ApiError[Any] | None = None
        try:
            conn.handshake_headers = _headers(await handshake.wait(transport, self.handshake_timeout))
        except TimeoutError:
            error = ServerError("Handshake timeout")
        except ApiError as exc:
            error = exc
        if error is None and session.draining:
            error = ServerError("Server is shutting down")
        if error is None:
            error = await self._admit(route, conn, deadline)
        if error is not None:
            await _refuse(transport, error)
            return False
        if handshake.overflowed:
            await transport.close(CLOSE_POLICY, "Too many frames before the handshake ended")
            return False
        conn.accepted = True
        # k goes first: what the session answers to frames sent right after h follows it.
        transport.write(HANDSHAKE_OK)
        for raw in handshake.after:
            session.receive(raw)
        transport.deliver_to(session.receive)
        return True


async def _admit_step(task: asyncio.Task[Any], deadline: float) -> bool:
    """Wait for a middleware's ``process`` until ``deadline``; False (and cancel it) if late."""
    remaining = deadline - asyncio.get_running_loop().time()
    done, _ = await asyncio.wait({task}, timeout=max(remaining, 0.0))
    if not done:
        task.cancel()
        return False
    task.result()
    return True


def _headers(h: Frame) -> Mapping[str, str]:
    """The headers of an ``h`` frame (no data: none).

    Raises:
        ValidationError: the headers are not a JSON object of strings.
    """
    try:
        return _headers_decoder.decode(h.data or b"{}")
    except msgspec.MsgspecError as exc:
        raise ValidationError("Invalid handshake headers", data=codec.validation_issues(exc)) from exc


async def _refuse(transport: Transport, error: ApiError[Any]) -> None:
    """Send ``x`` with ``error`` and close with 4001."""
    try:
        await transport.send(b"x:::" + error_envelope(error))
    except ConnectionClosedError:
        return
    await transport.close(CLOSE_HANDSHAKE_FAILED, "Handshake failed")
