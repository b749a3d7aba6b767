"""Both sides of the handshake: ``h``, then ``k`` or ``x`` (PROTOCOL.md, "Handshake").

The client sends ``h`` with its headers and waits for the answer (:func:`offer`). The
server waits for ``h``, runs the schema's middleware and the handler factory, and answers
``k`` or ``x`` (:func:`accept`). :class:`FirstFrame` is the transport's sink meanwhile: it
waits for the first frame of the kinds expected and keeps what the peer sends right after
it for the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from grestws.contract.envelopes import error_envelope, error_from_envelope, new_ref
from grestws.exceptions import (
    ApiError,
    ConnectionClosedError,
    ForbiddenError,
    FrameError,
    NotAuthorizedError,
    ServerError,
    TooManyRequestsError,
    UnavailableError,
    ValidationError,
)
from grestws.incidents import Incident, IncidentKind, Incidents
from grestws.limits import IdentityLimits
from grestws.middleware import ServerHandshake, overrides
from grestws.protocol import codec
from grestws.protocol.frames import CLOSE_HANDSHAKE_FAILED, CLOSE_POLICY, HANDSHAKE_OK, Frame, FrameType
from grestws.protocol.positions import RECOVERY_HEADER
from grestws.session import Session
from grestws.transports import Transport

if TYPE_CHECKING:  # the client imports this module, and nothing of the server
    from grestws.connections import ServerConnection

__all__ = ("FirstFrame", "accept", "offer")

logger = logging.getLogger("grestws")

_headers_decoder = msgspec.json.Decoder(dict[str, str])


class FirstFrame:
    """A transport's sink during a handshake: waits for the first frame of the given kinds,
    drops the frames before it, and keeps the ones after it for the session, up to
    ``keep`` bytes (:attr:`overflowed` tells of more)."""

    __slots__ = ("_first", "_keep", "_kept", "_kinds", "after", "overflowed")

    def __init__(self, *kinds: FrameType, keep: int = 1 << 20) -> None:
        self._kinds = kinds
        self._first: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._keep = keep
        self._kept = 0
        self.after: list[bytes | bytearray] = []
        self.overflowed = False

    def receive(self, raw: bytes | bytearray) -> None:
        """The sink: called by the transport for every frame until the session takes over."""
        if self._first.done():
            self._kept += len(raw) + 64
            if self._kept > self._keep:
                self.overflowed = True
            else:
                self.after.append(raw)
            return
        try:
            frame = codec.decode_frame(raw)
        except FrameError:
            return
        if frame.type in self._kinds:
            self._first.set_result(frame)

    async def wait(self, transport: Transport, timeout: float) -> Frame:
        """The frame, unless the transport closes or ``timeout`` seconds pass first.

        Raises:
            ConnectionClosedError: the transport closed first.
            TimeoutError: the time ran out first.
        """
        closed = asyncio.ensure_future(transport.wait_closed())
        try:
            await asyncio.wait((self._first, closed), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if self._first.done():
            return self._first.result()
        if closed.done() and not closed.cancelled():
            code, reason = closed.result()
            raise ConnectionClosedError(code, reason)
        raise TimeoutError

    @property
    def frame(self) -> Frame:
        """The first frame (once :meth:`wait` returned it)."""
        return self._first.result()

    def hand_over(self, transport: Transport, session: Session) -> None:
        """Give the session what came after the first frame, then every frame from now on."""
        for raw in self.after:
            session.receive(raw)
        transport.deliver_to(session.receive)


# -- the client's side --------------------------------------------------------------------


async def offer(
    transport: Transport,
    headers: Mapping[str, str],
    errors: Mapping[str, type[ApiError[Any]]],
    timeout: float,
) -> FirstFrame:
    """Send ``h`` with ``headers`` and wait for the server's answer.

    Returns:
        The sink that got ``k``, holding the frames that came after it.

    Raises:
        ApiError: the server refused with ``x`` (as the declared class in ``errors``, or
            the standard one).
        ConnectionClosedError: the server closed the socket first.
        TimeoutError: no answer within ``timeout`` seconds.
    """
    acceptance = FirstFrame(FrameType.HANDSHAKE_OK, FrameType.HANDSHAKE_ERR)
    transport.deliver_to(acceptance.receive)
    await transport.send(codec.encode_handshake(msgspec.json.encode(headers)))
    frame = await acceptance.wait(transport, timeout)
    if frame.type is FrameType.HANDSHAKE_ERR:
        try:
            envelope = codec.decode_result(frame.data)
        except msgspec.MsgspecError as exc:
            raise ConnectionClosedError(CLOSE_HANDSHAKE_FAILED, "Handshake failed") from exc
        raise error_from_envelope(envelope, errors=errors)
    return acceptance


# -- the server's side --------------------------------------------------------------------


async def accept(
    transport: Transport,
    session: Session,
    conn: ServerConnection[Any],
    factory: Callable[[ServerConnection[Any]], object],
    *,
    timeout: float,
    identities: IdentityLimits,
    incidents: Incidents,
    cookies_trusted: bool,
    keep: int,
    welcome: Callable[[ServerConnection[Any]], Awaitable[bytes | None]] | None = None,
) -> bool:
    """Run the server's side: wait for ``h``, run the schema's middleware and the handler
    factory in the connection's context, then send ``k`` and hand the transport to the
    session, or send ``x`` and close with 4001.

    Args:
        transport: The new connection's transport.
        session: Its session, not yet running.
        conn: The connection the middleware and the handler see.
        factory: Makes the connection's handler (run after the middleware, before ``k``).
        timeout: Seconds for the whole handshake, middleware included.
        identities: The App's per-identity connection counts and rates.
        incidents: Where refusals over a limit are reported.
        cookies_trusted: Whether middleware may read the upgrade request's cookies.
        keep: Bytes of frames sent right after ``h`` kept for the session; more closes
            the connection with 1008.
        welcome: Run once the connection is admitted, before ``k``; gives the ``k``
            frame's data (None: ``null``). The handshake's deadline bounds it.

    Returns:
        True once ``k`` is sent; False when the connection was refused (and closed).

    Raises:
        ConnectionClosedError: the client left during the handshake.
    """
    handshake = FirstFrame(FrameType.HANDSHAKE, keep=keep)
    transport.deliver_to(handshake.receive)
    deadline = asyncio.get_running_loop().time() + timeout
    error: ApiError[Any] | None = None
    try:
        headers = _headers(await handshake.wait(transport, timeout))
        # The recovery request is the protocol's, not the application's: middleware and
        # handlers see the headers the application sent.
        conn.recovery_request = headers.pop(RECOVERY_HEADER, None)
        conn.handshake_headers = headers
    except TimeoutError:
        error = ServerError("Handshake timeout")
    except ApiError as exc:
        error = exc
    if error is None and session.draining:
        error = UnavailableError("Server is shutting down")
    if error is None:
        middleware = ServerHandshake(
            conn, conn.handshake_headers, conn.request, cookies_trusted=cookies_trusted
        )
        error = await _admit(session, conn, middleware, factory, deadline, identities, incidents)
    if error is not None:
        report_refusal(incidents, conn.path, error, conn)
        await _refuse(transport, error)
        return False
    if handshake.overflowed:
        await transport.close(CLOSE_POLICY, "Too many frames before the handshake ended")
        return False
    accepted = HANDSHAKE_OK
    if welcome is not None:
        try:
            async with asyncio.timeout(max(0.0, deadline - asyncio.get_running_loop().time())):
                data = await welcome(conn)
        except TimeoutError:
            error = ServerError("Handshake timeout")
            report_refusal(incidents, conn.path, error, conn)
            await _refuse(transport, error)
            return False
        if data is not None:
            accepted = codec.encode_frame(FrameType.HANDSHAKE_OK, data=data)
    # k goes first: what the session answers to frames sent right after h follows it.
    transport.write(accepted)  # raises if the client left: it was never accepted
    conn.accepted = True
    handshake.hand_over(transport, session)
    return True


async def _admit(
    session: Session,
    conn: ServerConnection[Any],
    handshake: ServerHandshake,
    factory: Callable[[ServerConnection[Any]], object],
    deadline: float,
    identities: IdentityLimits,
    incidents: Incidents,
) -> ApiError[Any] | None:
    """Run the schema's middleware and the handler factory in the connection's context.

    Returns:
        None when the connection is admitted, else the error that refuses it.
    """
    context = session.base_context()
    chain = conn.schema.middleware
    loop = asyncio.get_running_loop()
    try:
        for middleware in chain:
            if overrides(middleware, "parse_handshake"):
                context.run(middleware.parse_handshake, handshake)
        for middleware in chain:
            if overrides(middleware, "process"):
                task = loop.create_task(middleware.process(handshake), context=context)
                if not await _step(task, deadline):
                    return ServerError("Handshake timeout")
        for middleware in chain:
            if overrides(middleware, "identify"):
                found = loop.create_task(middleware.identify(handshake), context=context)
                if not await _step(found, deadline):
                    return ServerError("Handshake timeout")
                if (identity := found.result()) is not None:
                    conn.identity = session.identity = identity
                    break
        if conn.identity is not None and session.gate is not None:
            entry = identities.acquire(conn.identity.id, time.monotonic())
            if entry is None:
                message = f"{conn.path}: {conn.identity.id!r:.100} has too many connections"
                incidents.report(Incident(IncidentKind.CONNECTION_REFUSED, message))
                return TooManyRequestsError("Too many connections for this identity", data=None)
            session.gate.share_identity(entry)
        permission = conn.schema.permission
        if permission is not None and not permission.allows(conn.identity):
            if conn.identity is None:
                return NotAuthorizedError("This socket needs an identity")
            return ForbiddenError("This identity may not open this socket")
        conn.handler = context.run(factory, conn)
        session.bind(conn.handler)
    except ApiError as exc:
        return exc
    except Exception as exc:
        ref = new_ref()
        logger.error("%s: handshake failed (ref %s)", conn.path, ref, exc_info=exc)
        return ServerError(ref=ref)
    return None


async def _step(task: asyncio.Task[Any], deadline: float) -> bool:
    """Wait for a middleware hook until ``deadline``; False (and cancel it) if late."""
    remaining = deadline - asyncio.get_running_loop().time()
    done, _ = await asyncio.wait({task}, timeout=max(remaining, 0.0))
    if not done:
        task.cancel()
        return False
    task.result()
    return True


def _headers(h: Frame) -> dict[str, str]:
    """The headers of an ``h`` frame (no data: none).

    Raises:
        ValidationError: the headers are not a JSON object of strings.
    """
    try:
        return _headers_decoder.decode(h.data or b"{}")
    except msgspec.MsgspecError as exc:
        raise ValidationError("Invalid handshake headers", data=codec.validation_issues(exc)) from exc


def report_refusal(
    incidents: Incidents, path: str, error: ApiError[Any], conn: ServerConnection[Any] | None = None
) -> None:
    """Report a connection to ``path`` refused with ``error`` (an ``x`` frame, or a close
    4000 for an invalid query) as a ``handshake_refused`` incident, logged at INFO."""
    message = f"{path}: refused the handshake with {error.type}: {error.message or ''}"
    incident = Incident(
        IncidentKind.HANDSHAKE_REFUSED, message[:300], connection=conn, path=path, error=error, answered=True
    )
    incidents.report(incident, level=logging.INFO)


async def _refuse(transport: Transport, error: ApiError[Any]) -> None:
    """Send ``x`` with ``error`` and close with 4001."""
    try:
        await transport.send(codec.encode_handshake_error(error_envelope(error)))
    except ConnectionClosedError:
        return
    await transport.close(CLOSE_HANDSHAKE_FAILED, "Handshake failed")
