"""The typed test client: :func:`call_on` and :class:`TestClient`.

A test client is a real :class:`~grestws.client.Client` (the same handshake, codecs,
validation and errors) with three things added for tests: it connects to an
:class:`~grestws.App` in-process by default, it serves the server's calls with recording
mocks (:attr:`TestClient.mock`), and it keeps a log of every frame
(:attr:`TestClient.log`) for failure reports.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Generator, Mapping
from typing import Any, Generic, Protocol, Self, TypeVar, cast

from grestws.app import App
from grestws.client import Client, ClientState
from grestws.contract.contract import SocketSchema
from grestws.contract.methods import MethodSpec
from grestws.exceptions import ContractError, InvalidStateError
from grestws.testkit.inprocess import AppDialer
from grestws.testkit.mocks import Mocks, UnconsumedCallsError, method_mocks, unconsumed_problem
from grestws.testkit.wire import RecordingTransport, WireLog, keep
from grestws.transports import Dialed, Dialer
from grestws.transports.websockets import WebsocketsDialer

__all__ = ("Call", "ClientFactory", "TestClient", "call_on")

C2S = TypeVar("C2S")
S2C = TypeVar("S2C")
Q = TypeVar("Q")
R = TypeVar("R")

IN_PROCESS_URL = "ws://testserver"
"""The base URL of an in-process connection (only its path means anything)."""

LOG_TAIL = 30
"""How many of the latest frames a failure message quotes."""

_numbers = itertools.count(1)


class Call(Generic[R]):
    """One call made through :attr:`TestClient.call`: await it for the result, or hand
    it to :func:`~grestws.testkit.expect`, whose failure messages then quote the wire log.
    """

    __slots__ = ("_awaitable", "client", "spec")

    def __init__(self, spec: MethodSpec, awaitable: Awaitable[R], client: TestClient[Any, Any]) -> None:
        self.spec = spec
        self.client = client
        self._awaitable = awaitable

    def __repr__(self) -> str:
        return f"<Call {self.client.name}.call.{self.spec.py_name}>"

    @property
    def name(self) -> str:
        """How tests name it: ``ann.call.send_message``."""
        return f"{self.client.name}.call.{self.spec.py_name}"

    def __await__(self) -> Generator[Any, None, R]:
        return self._awaitable.__await__()


class _Caller:
    """What :attr:`TestClient.call`'s proxy sends through: the client's own proxy, each
    call wrapped in a :class:`Call`."""

    __slots__ = ("_client", "_test_client")

    def __init__(self, client: Client[Any, Any], test_client: TestClient[Any, Any]) -> None:
        self._client = client
        self._test_client = test_client

    def request(self, spec: MethodSpec, arg: Any, timeout: float | None) -> Call[Any]:
        return Call(spec, self._send(spec, arg, timeout), self._test_client)

    def notify(self, spec: MethodSpec, arg: Any) -> Call[None]:
        return Call(spec, self._send(spec, arg, None), self._test_client)

    def _send(self, spec: MethodSpec, arg: Any, timeout: float | None) -> Awaitable[Any]:
        method = getattr(self._client.with_timeout(timeout), spec.py_name)
        result: Awaitable[Any] = method(arg) if spec.has_input else method()
        return result


class _RecordingDialer:
    """A dialer whose transports note every frame in ``log``."""

    __slots__ = ("_inner", "_log")

    def __init__(self, inner: Dialer, log: WireLog) -> None:
        self._inner = inner
        self._log = log

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        dialed = await self._inner(url, headers)
        return Dialed(RecordingTransport(dialed.transport, self._log), dialed.remote_address)


class TestClient(Generic[C2S, S2C]):
    """A typed client of one schema, for tests. Make it with :func:`call_on`.

    Args:
        schema: The schema to talk to (the client's or the server's: only its contract
            and path count).
        target: An :class:`~grestws.App`, reached in-process over an in-memory transport
            (no socket, no port; the App's middleware, permissions and limits all apply),
            or a server's URL (``ws://127.0.0.1:8765``), reached over a real socket.
        name: What reports call it (``ann``); by default the contract's name and a number.
        token: A bearer token, sent as ``Authorization: Bearer <token>`` in ``h``.
        headers: Handshake headers sent in ``h`` (after the token's).
        query: The query to connect with, of the schema's query type.
        upgrade_headers: HTTP headers of the upgrade request (``Origin``, ``Cookie``).
        timeout: Seconds a call, and an expectation on a push, wait at most.
        fail_on_unconsumed: Whether :meth:`disconnect` fails when a call from the server
            was never consumed by an expectation.

    Concurrency: any number of tasks may call through :attr:`call` at once; expectations
    on :attr:`mock` may wait while calls run. One test client is one connection at a
    time; several test clients of one App are several users.
    """

    __test__ = False  # a library class, not a pytest test case

    def __init__(
        self,
        schema: SocketSchema[C2S, S2C, Any],
        target: App | str,
        *,
        name: str | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        query: object = None,
        upgrade_headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        fail_on_unconsumed: bool = True,
    ) -> None:
        self.schema = schema
        self.name = name or f"{schema.name} #{next(_numbers)}"
        self.timeout = timeout
        self.fail_on_unconsumed = fail_on_unconsumed
        self._options: dict[str, Any] = {
            "token": token,
            "headers": dict(headers or {}),
            "query": query,
            "upgrade_headers": dict(upgrade_headers or {}),
        }
        self.log = WireLog(self.name)
        """Every frame this client sent and received (the latest ones)."""
        keep(self.log)
        self._mocks = Mocks(schema.contract.server_to_client, self.name, self.log, timeout)
        self._app_dialer: AppDialer | None = None
        if isinstance(target, App):
            target.check()  # what serve() and the ASGI lifespan refuse, a test refuses too
            _check_served(target, schema)
            self._app_dialer = AppDialer(target)
            self.url = IN_PROCESS_URL
            dialer: Dialer = self._app_dialer
        else:
            self.url = target
            dialer = WebsocketsDialer()
        self._dialer = _RecordingDialer(dialer, self.log)
        self._client: Client[C2S, S2C] | None = None
        self._call: C2S | None = None
        self._ended = True

    def __repr__(self) -> str:
        return f"<TestClient {self.name} {self.state.value}>"

    # -- what tests use ---------------------------------------------------------------

    @property
    def call(self) -> C2S:
        """The typed proxy to the server: ``await ann.call.send_message(req)``, or
        ``await expect(ann.call.send_message(req)).to_match({...})``.

        Raises:
            InvalidStateError: not connected.
        """
        if self._call is None:
            raise InvalidStateError(f"{self.name}: connect() first")
        return self._call

    def with_timeout(self, timeout: float | None) -> C2S:
        """A proxy like :attr:`call` whose requests time out after ``timeout`` s.

        Raises:
            InvalidStateError: not connected.
        """
        if self._call is None:
            raise InvalidStateError(f"{self.name}: connect() first")
        proxy: C2S = self.schema.contract.client_to_server.proxy(_Caller(self.client, self), timeout)
        return proxy

    @property
    def mock(self) -> S2C:
        """The server's calls to this client, one recording mock per method:
        ``await expect(ann.mock.new_message).to_match({...})``, and
        ``when(ann.mock.are_you_there).reply(True)``. Usable before connecting."""
        return cast("S2C", self._mocks)  # a Mocks object serves S2C's methods under their names

    @property
    def client(self) -> Client[C2S, S2C]:
        """The underlying :class:`~grestws.client.Client` (``on_close``, ``close_code``).

        Raises:
            InvalidStateError: never connected.
        """
        if self._client is None:
            raise InvalidStateError(f"{self.name}: connect() first")
        return self._client

    @property
    def state(self) -> ClientState:
        """Where the current connection is in its lifecycle (NEW before the first)."""
        return ClientState.NEW if self._client is None else self._client.state

    @property
    def left_connected(self) -> bool:
        """Whether the last connection was neither ended with :meth:`disconnect` nor closed
        by the server: still open, or cut only when its event loop closed."""
        return not self._ended

    def _closed(self, code: int | None, reason: str) -> None:
        if code is not None:
            self._ended = True

    # -- lifecycle --------------------------------------------------------------------

    async def connect(
        self,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        query: object = None,
        upgrade_headers: Mapping[str, str] | None = None,
    ) -> Self:
        """Connect and run the handshake; arguments given here replace those given to
        :func:`call_on`. A client that disconnected may connect again; what the server
        called on the earlier connection is forgotten.

        Cancel-safe, as :meth:`grestws.Client.connect`.

        Raises:
            ApiError: the server refused the handshake (``NOT_AUTHORIZED``, ...).
            ValidationError: the query does not fit the schema's query type.
            ConnectError: no schema at the path, or the server is not there.
            InvalidStateError: connected already.
        """
        if self._client is not None and self._client.state is not ClientState.CLOSED:
            raise InvalidStateError(f"{self.name} is connected already")
        options = self._options
        token = options["token"] if token is None else token
        handshake_headers = {} if token is None else {"authorization": f"Bearer {token}"}
        handshake_headers.update(options["headers"] if headers is None else headers)
        client: Client[C2S, S2C] = Client(
            self.url,
            self.schema,
            handlers=self.mock,
            query=options["query"] if query is None else query,
            timeout=self.timeout,
            handshake_timeout=self.timeout,
            headers=handshake_headers,
            upgrade_headers=options["upgrade_headers"] if upgrade_headers is None else upgrade_headers,
            dialer=self._dialer,
            reconnect=False,
        )
        self._client = client
        self._call = None
        self._ended = False
        for mock in method_mocks(self._mocks):
            mock.forget()
        try:
            await client.connect()
        except BaseException:
            self._ended = True
            if self._app_dialer is not None:
                await self._app_dialer.wait_closed()
            raise
        client.on_close(self._closed)
        proxy: C2S = self.schema.contract.client_to_server.proxy(_Caller(client, self), self.timeout)
        self._call = proxy
        return self

    async def disconnect(self) -> None:
        """Close gracefully (calls in flight first, as :meth:`grestws.Client.disconnect`),
        wait until an in-process App is done with the connection, then check that every
        call from the server was consumed. :attr:`call` is gone until the next connect.

        Idempotent. After it, the server's ``on_close`` callbacks have run (in-process).

        Raises:
            UnconsumedCallsError: a push or request from the server was not consumed by an
                expectation (unless ``fail_on_unconsumed`` is False). It is raised once.
        """
        client = self._client
        self._ended = True
        self._call = None
        if client is not None:
            await client.disconnect(self.timeout)
        if self._app_dialer is not None:
            await self._app_dialer.wait_closed()
        self.check_consumed()

    def check_consumed(self) -> None:
        """Fail if a call from the server was not consumed; each is reported once.

        Raises:
            UnconsumedCallsError: listing them, with the end of the wire log.
        """
        problem = unconsumed_problem(self._mocks)
        if problem is None or not self.fail_on_unconsumed:
            return
        for mock in method_mocks(self._mocks):
            for arrival in mock.unconsumed():
                arrival.required = False
        raise UnconsumedCallsError(f"{self.name}: {problem}\n\n{self.log.render(last=LOG_TAIL)}")

    async def __aenter__(self) -> Self:
        if self.state in (ClientState.NEW, ClientState.CLOSED):
            await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            await self.disconnect()
        except UnconsumedCallsError:
            if exc_type is None:  # a failure in the block tells more; keep it
                raise


def _check_served(app: App, schema: SocketSchema[Any, Any, Any]) -> None:
    route = app.routes.get(schema.path)
    if route is None:
        served = ", ".join(sorted(app.routes)) or "nothing"
        raise ContractError(f"{app!r} serves no schema at {schema.path} (it serves {served})")
    if route.schema.contract is not schema.contract:
        raise ContractError(
            f"{app!r} serves {route.schema.contract.name} at {schema.path}, not {schema.contract.name}"
        )


def call_on(
    schema: SocketSchema[C2S, S2C, Q],
    target: App | str,
    *,
    name: str | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Q | None = None,
    upgrade_headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
    fail_on_unconsumed: bool = True,
) -> TestClient[C2S, S2C]:
    """A typed test client of ``schema`` on ``target`` (an App in-process, or a URL).

    ::

        async with call_on(ChatApi, app, token="secret-ann") as ann:
            await expect(ann.call.send_message(req)).to_match({"success": True})
            await expect(ann.mock.new_message).to_match({"text": "hi"})

    ``async with`` connects and disconnects; or call :meth:`TestClient.connect` and
    :meth:`TestClient.disconnect`. The arguments are those of :class:`TestClient`.

    Raises:
        ContractError: ``target`` is an App that does not serve ``schema``'s contract at
            its path, or that could not be served at all (:meth:`grestws.App.check`).
    """
    return TestClient(
        schema,
        target,
        name=name,
        token=token,
        headers=headers,
        query=query,
        upgrade_headers=upgrade_headers,
        timeout=timeout,
        fail_on_unconsumed=fail_on_unconsumed,
    )


class ClientFactory(Protocol):
    """The ``grestws_client`` fixture of the pytest plugin: ``grestws_client(schema,
    target=None, **options)`` is :func:`call_on` with the ``grestws_app`` fixture's App
    when no target is given; annotate the fixture argument with it."""

    def __call__(
        self, schema: SocketSchema[C2S, S2C, Any], target: App | str | None = None, /, **options: Any
    ) -> TestClient[C2S, S2C]: ...
