"""What a server serves: schemas at URL paths with their handlers, and the settings.

:class:`App` owns the life of one server-side connection from the first frame on (the
handshake, the session, the close), independent of the transport, so the websockets server
of :mod:`grestws.server` and later adapters run the same code.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Generic, TypeVar

from grestws.broker import Broker
from grestws.connections import Connections, ServerConnection
from grestws.context import Connection, ConnectRequest
from grestws.contract.contract import SocketSchema
from grestws.exceptions import ConnectionClosedError, ContractError, InvalidStateError, ValidationError
from grestws.handshake import accept, report_refusal
from grestws.incidents import PEER_LOG, Incident, IncidentHook, IncidentKind, Incidents
from grestws.interceptors import Interceptor
from grestws.limits import Gate, IdentityLimits, Limits
from grestws.origins import OriginPolicy
from grestws.protocol.frames import (
    CLOSE_INVALID_QUERY,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN_LATER,
    DEAD_PEER_REASON,
)
from grestws.recovery import Recovery
from grestws.rooms import Rooms
from grestws.session import Session
from grestws.topics import serve_topics
from grestws.transports import Refusal, Transport
from grestws.transports.asgi import AsgiEntry, Receive, Scope, Send

__all__ = ("App", "Route")

C2S = TypeVar("C2S")
S2C = TypeVar("S2C")

logger = logging.getLogger("grestws")

_NO_RESOLVER = "no middleware of the schema identifies an identity"
_STRICT = "once one method declares a permission all must; declare PUBLIC to keep it open"


HandlerFactory = Callable[[ServerConnection[S2C]], C2S]
ConnectHook = Callable[[ServerConnection[Any]], Awaitable[object] | object]
"""``hook(conn)``, run once the connection is accepted (a coroutine function or a plain one)."""
DisconnectHook = Callable[[ServerConnection[Any], int | None, str], Awaitable[object] | object]
"""``hook(conn, code, reason)``, run once an accepted connection closed."""


class Route(Generic[C2S, S2C]):
    """A schema and the factory that makes a handler for each of its connections."""

    def __init__(self, schema: SocketSchema[C2S, S2C, Any], factory: HandlerFactory[S2C, C2S]) -> None:
        self.schema = schema
        self.factory = factory
        self.topics = any(spec.topic is not None for spec in schema.contract.client_to_server)
        """Whether the contract declares subscriptions (@watch / @unwatch)."""


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
        broker: How pushes to rooms and users reach the other processes of a cluster
            (:class:`~grestws.broker.redis.RedisBroker`); by default there are none. See
            ``docs/scaling.md``.
        recovery: Keep what reconnecting clients missed, and their sessions, for
            ``Recovery.window`` seconds (in memory, or in Redis with the Redis broker), so
            that a client that comes back gets every push it missed, in order, once.
            Off by default. See ``docs/reconnect.md``.
        interceptors: Run around every call a connection serves and every call it makes
            through ``conn.outgoing`` (:mod:`grestws.interceptors`), the first outermost;
            :attr:`interceptors` takes more before the App is served.

    Attributes:
        connections: The registry of live connections (:class:`~grestws.connections.Connections`):
            by identity, drain, close by identity.
        rooms: Rooms, and pushes to rooms, users and connections on every process
            (:class:`~grestws.rooms.Rooms`; ``docs/rooms.md``).
        interceptors: The interceptors, in order (a list: append to add one). A
            connection runs those there were when it opened.

    These settings hold whatever serves the App; what only one transport knows (pings,
    compression, the listening socket) is set where it is served: :func:`grestws.serve`,
    or the ASGI server.

    An App is also an ASGI application: ``uvicorn module:app`` serves it, and Starlette,
    FastAPI and Litestar can mount it beside their HTTP routes (see ``docs/asgi.md``).

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
        broker: Broker | None = None,
        recovery: Recovery | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self.routes: dict[str, Route[Any, Any]] = {}
        self.limits = Limits() if limits is None else limits
        self.origins = OriginPolicy(allowed_origins)
        self.incidents = Incidents(on_error)
        self.identities = IdentityLimits(self.limits)
        self.handshake_timeout = handshake_timeout
        self.request_timeout = request_timeout
        self.shutdown_timeout = shutdown_timeout
        self.connections = Connections()
        self.rooms = Rooms(self.connections, self._client_halves, broker)
        self.rooms.recovery = recovery
        self.interceptors: list[Interceptor] = list(interceptors)
        self._on_connect: list[ConnectHook] = []
        self._on_disconnect: list[DisconnectHook] = []
        self._asgi = AsgiEntry(self)

    def _client_halves(self) -> list[Any]:
        return [route.schema.contract.server_to_client for route in self.routes.values()]

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        """Run ``hook(conn)`` for every connection once it is accepted (``k`` sent, its
        handler made): the place to join rooms and mark presence. Usable as a decorator.

        Hooks run in the order added, each awaited if it returns an awaitable, while the
        client's first calls may already run; an exception is logged and the connection
        goes on.
        """
        self._on_connect.append(hook)
        return hook

    def on_disconnect(self, hook: DisconnectHook) -> DisconnectHook:
        """Run ``hook(conn, code, reason)`` for every accepted connection once it closed
        (it has left its rooms by then): the place for cleanup. Usable as a decorator;
        run as :meth:`on_connect` hooks are."""
        self._on_disconnect.append(hook)
        return hook

    async def _run_hooks(self, hooks: Sequence[Callable[..., object]], *args: Any) -> None:
        for hook in hooks:
            try:
                result = hook(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("%s hook %r failed", "connect" if len(args) == 1 else "disconnect", hook)

    async def start(self) -> None:
        """Get ready to serve: :meth:`check`, then start the broker. Servers call it; the
        first connection does too. Idempotent.

        Raises:
            ContractError: the App cannot be served.
        """
        self.check()
        await self.rooms.start()

    async def stop(self) -> None:
        """Stop the broker (after :meth:`shutdown`); a later connection starts it again."""
        await self.rooms.stop()

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

    def refusal(self, path: str, headers: Mapping[str, str]) -> Refusal | None:
        """Why an upgrade to ``path`` must be refused (reported as an incident), or None.

        Checks that a schema is served at ``path`` (HTTP 404), the origin against
        ``allowed_origins`` (403) and the live connections against
        ``limits.max_connections`` (503). Transports that can still answer the upgrade
        send the refusal's HTTP status; the others close with its close code.
        """
        if path not in self.routes:
            return Refusal(HTTPStatus.NOT_FOUND, CLOSE_POLICY, "Not Found")
        origin = headers.get("origin")
        if not self.origins.allows(origin, headers.get("host")):
            self._refused(path, f"{path}: origin {origin!r:.100} not allowed")
            return Refusal(HTTPStatus.FORBIDDEN, CLOSE_POLICY, "Origin not allowed")
        cap = self.limits.max_connections
        if cap is not None and len(self.connections) >= cap:
            self._refused(path, f"{path}: over {cap} connections")
            return Refusal(HTTPStatus.SERVICE_UNAVAILABLE, CLOSE_TRY_AGAIN_LATER, "Too many connections")
        return None

    def _refused(self, path: str, message: str) -> None:
        self.incidents.report(Incident(IncidentKind.CONNECTION_REFUSED, message, path=path))

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

    async def handle(self, transport: Transport, request: ConnectRequest, owner: object = None) -> None:
        """Run one connection from the first frame to its close.

        The connection is in :attr:`connections` (under ``owner``, the server that opened
        it) from its first frame until the calls it started have ended, so a server can
        refuse a handshake that completes during shutdown and drain or cancel what still
        runs. Calls still running when the client leaves get ``shutdown_timeout`` seconds
        to end, then they are cancelled. Cancelling this closes nothing: the transport
        adapter closes the transport.

        Raises:
            InvalidStateError: no schema is served at ``request.path``.
        """
        route = self.routes.get(request.path)
        if route is None:
            raise InvalidStateError(f"no schema at {request.path}")
        refusal = self.refusal(request.path, request.headers)
        if refusal is not None:  # a transport that could not answer the upgrade with HTTP
            await transport.close(refusal.close_code, refusal.reason)
            return
        schema = route.schema
        contract = schema.contract
        interceptors = tuple(self.interceptors)
        session = Session(
            transport,
            Connection("", request.path, request.remote_address, "server"),
            incoming=contract.client_to_server,
            outgoing=contract.server_to_client,
            incidents=self.incidents,
            gate=Gate(self.limits),
            interceptors=interceptors,
        )
        conn: ServerConnection[Any] = ServerConnection(
            request, session, schema, timeout=self.request_timeout, interceptors=interceptors
        )
        session.connection = conn
        if schema.query is not None:
            try:
                conn.typed_query = schema.parse_query(request.query)
            except ValidationError as exc:
                report_refusal(self.incidents, request.path, exc)
                await transport.close(CLOSE_INVALID_QUERY, "Invalid query parameters")
                return
        await self.rooms.start()
        self.rooms.serving(conn)
        self.connections.add(conn, owner)
        try:
            accepted = await accept(
                transport,
                session,
                conn,
                route.factory,
                timeout=self.handshake_timeout,
                identities=self.identities,
                incidents=self.incidents,
                cookies_trusted=self._cookies_trusted(request),
                keep=self.limits.max_outgoing_buffer or (1 << 20),
                welcome=self.rooms.welcome,
            )
            if accepted:
                await self.rooms.welcomed(conn)
                self.connections.identified(conn)
                self.rooms.connected(conn)
                if route.topics:
                    serve_topics(self.rooms, conn)
                if self._on_connect:
                    await self._run_hooks(self._on_connect, conn)
                await session.run()
        except ConnectionClosedError as exc:
            session.connection_lost(exc.code, exc.reason)
        finally:
            self.rooms.forget(conn)
            if conn.accepted:
                conn.closed_now()
                if session.close_reason == DEAD_PEER_REASON:
                    self.incidents.report(
                        Incident(IncidentKind.DEAD_PEER, "dropped: it answered no ping", connection=conn)
                    )
                if self._on_disconnect:
                    await self._run_hooks(self._on_disconnect, conn, session.close_code, session.close_reason)
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
                self.connections.discard(conn)

    def _cookies_trusted(self, request: ConnectRequest) -> bool:
        """Whether middleware may read the upgrade's cookies (see :class:`OriginPolicy`);
        warns, throttled, when a cross-origin upgrade's cookies are withheld."""
        origin = request.headers.get("origin")
        trusted = self.origins.trusts_cookies(origin, request.headers.get("host"))
        if not trusted and "cookie" in request.headers and PEER_LOG.allow("cross_origin_cookies"):
            logger.warning(
                "%s: ignored the cookies of an upgrade from origin %.100r; list it in allowed_origins "
                "to let middleware use them",
                request.path,
                origin,
            )
        return trusted

    async def shutdown(self, timeout: float | None = None, owner: object = None) -> None:
        """Shut every live connection down gracefully (those of ``owner`` when given):
        new requests are answered UNAVAILABLE "Server is shutting down", calls in flight
        get ``timeout`` seconds (``shutdown_timeout`` by default) to finish and answer,
        what still runs is cancelled, and every connection is closed with 1012 (service
        restart: reconnecting clients come back at once).

        Servers call it when they close; an ASGI server's lifespan shutdown calls it.
        Safe to call more than once; cancelling it stops the wait only.
        """
        await self.connections.drain(self.shutdown_timeout if timeout is None else timeout, owner)

    @contextlib.asynccontextmanager
    async def lifespan(self, parent: object = None) -> AsyncGenerator[None]:
        """The App's startup and shutdown, for the lifespan of an ASGI app that mounts it
        (a parent's lifespan does not reach mounted apps)::

            api = Starlette(routes=[Mount("/", app=grestws_app)], lifespan=grestws_app.lifespan)

        On entry it runs :meth:`start` (the checks, the broker); on exit :meth:`shutdown`,
        a graceful drain, then :meth:`stop`.

        Raises:
            ContractError: the App cannot be served (on entry: the parent fails to start).
        """
        await self.start()
        try:
            yield
        finally:
            await self.shutdown()
            await self.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application: websocket connections to the schemas' paths (relative to
        a mount's ``root_path``), and the lifespan (checks on startup, a graceful
        shutdown). See :mod:`grestws.transports.asgi`."""
        await self._asgi(scope, receive, send)
