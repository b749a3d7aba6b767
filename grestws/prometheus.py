"""Prometheus metrics of an App, with prometheus-client (``pip install 'grestws[metrics]'``).

::

    metrics = PrometheusMetrics()          # in prometheus_client's default registry
    metrics.instrument(app)
    api = Starlette(routes=[Mount("/metrics", metrics.asgi_app()), Mount("/", app)])

``grestws serve module:app --metrics-port 9100`` does the same and serves ``/metrics`` on
its own port. What is counted, with the names of @grest-ts/websocket's metrics beside
them, is in ``docs/observability.md``:

- connections: ``grestws_connections_active``, ``grestws_connections_total{result}``
  (``accepted``, or why it was refused), ``grestws_heartbeat_timeouts_total``;
- calls a client makes: ``grestws_requests_total{method, kind, result}`` (those refused
  before a handler ran included: invalid, not permitted, over a limit),
  ``grestws_request_duration_seconds{method, kind}`` (those a handler served);
- calls the server makes through ``conn.outgoing``: ``grestws_out_requests_total``,
  ``grestws_out_request_duration_seconds``;
- ``grestws_incidents_total{kind}``: limit hits, dropped messages and pushes, refused
  calls, failed handlers (:class:`~grestws.IncidentKind`);
- with a broker: ``grestws_broker_published_total``, ``grestws_broker_delivered_total``.

Every series has the label ``path``, the URL path of the socket (``/ws/chat``); the
connection series also ``contract``. ``method`` is the wire path (``ChatApi.sendMessage``)
and ``result`` is ``OK`` or what the call failed with (:func:`grestws.outcome`).
Label values come from the App's own contracts and error types, never from what a peer
sends, so a peer cannot grow the number of series: a call to an unknown method is counted
under the incident ``unknown_route``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, cast

try:
    import prometheus_client
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, multiprocess
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("grestws.prometheus needs prometheus-client: pip install 'grestws[metrics]'") from exc

from grestws.call_metrics import CallSeries, CollectedCalls, NativeCalls
from grestws.incidents import Incident, IncidentKind
from grestws.interceptors import Call, Proceed, outcome

if TYPE_CHECKING:
    from grestws.app import App
    from grestws.connections import ServerConnection
    from grestws.contract.methods import MethodSpec
    from grestws.transports.asgi import Receive, Scope, Send

__all__ = (
    "DURATION_BUCKETS",
    "MULTIPROCESS_ENV",
    "PrometheusMetrics",
    "forget_worker",
    "serve_metrics",
    "workers_metrics",
    "workers_registry",
)

_now = time.perf_counter

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus-client's multiprocess mode keeps the workers' values: set, before
prometheus-client is imported, in every worker of ``grestws serve --workers``."""

DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Seconds: the buckets of the duration histograms, from half a millisecond to 30 s."""

_REFUSALS = (IncidentKind.CONNECTION_REFUSED, IncidentKind.HANDSHAKE_REFUSED)
_REFUSED_CALLS = (
    IncidentKind.INVALID_PAYLOAD,
    IncidentKind.NOT_PERMITTED,
    IncidentKind.RATE_LIMITED,
    IncidentKind.IN_FLIGHT_LIMITED,
)
"""Calls answered (or dropped) before a handler ran: counted as requests with the error."""


class PrometheusMetrics:
    """The metrics of one or more Apps, in one registry.

    Args:
        registry: Where the metrics live: prometheus-client's default registry (what
            ``start_http_server`` and ``make_asgi_app`` serve by default), or your own.
        namespace: The prefix of every name.
        buckets: The duration histograms' bucket bounds, in seconds.

    The calls' series are counted in plain numbers and handed to prometheus-client at
    scrape time (:class:`~grestws.call_metrics.CollectedCalls`); in prometheus-client's
    multiprocess mode (``$PROMETHEUS_MULTIPROC_DIR`` set, as in the workers of
    ``grestws serve --workers``) with its own Counters and Histograms, which that mode
    needs (:class:`~grestws.call_metrics.NativeCalls`).

    Concurrency: the App calls it from its event loop; a scrape may run in any thread at
    any time.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        namespace: str = "grestws",
        buckets: tuple[float, ...] = DURATION_BUCKETS,
    ) -> None:
        self.registry = registry
        connection = ("contract", "path")

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(name, doc, labels, namespace=namespace, registry=registry)

        self.connections_active = Gauge(
            "connections_active",
            "Open connections (handshake done).",
            connection,
            namespace=namespace,
            registry=registry,
            multiprocess_mode="livesum",  # across the workers of --workers: the live ones' sum
        )
        self.connections = counter(
            "connections",
            "Connections by result: accepted, or why they were refused.",
            (*connection, "result"),
        )
        self.heartbeat_timeouts = counter(
            "heartbeat_timeouts", "Connections dropped because the peer answered no ping.", connection
        )
        self.calls: NativeCalls | CollectedCalls = (
            NativeCalls(namespace, registry, buckets)
            if os.environ.get(MULTIPROCESS_ENV)  # each worker writes its values to files
            else CollectedCalls(namespace, registry, buckets)
        )
        """The series of the calls: by method, kind and result, with their durations."""
        self.incidents = counter(
            "incidents", "Limit hits, dropped messages, refused calls, failed handlers.", ("path", "kind")
        )
        self.broker_published = counter(
            "broker_published", "Envelopes this process published to its broker.", ("kind",)
        )
        self.broker_delivered = counter(
            "broker_delivered", "Envelopes this process received from its broker.", ("kind",)
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        self._calls: dict[tuple[Any, ...], CallSeries] = {}
        self._apps: list[App] = []

    def instrument(self, app: App) -> App:
        """Count what ``app`` does from now on (call it before ``app`` serves); returns it.

        Adds an interceptor (first: it sees every call, those that other interceptors
        short-circuit included), a connect and a disconnect hook, an incident listener
        and a broker observer.
        """
        self._apps.append(app)
        app.interceptors.insert(0, self.intercept)
        app.on_connect(self.opened)
        app.on_disconnect(self.closed)
        app.incidents.listeners.append(self.incident)
        app.rooms.observe_broker(self.broker)
        return app

    def asgi_app(self) -> Callable[[Scope, Receive, Send], Any]:
        """An ASGI app answering every GET with the metrics in Prometheus's text format
        (or OpenMetrics, as the scraper asks): mount it at ``/metrics``."""
        app = prometheus_client.make_asgi_app(self.registry or REGISTRY)  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType]
        return cast("Callable[[Scope, Receive, Send], Any]", app)

    # -- what the App calls ---------------------------------------------------------------

    async def intercept(self, call: Call, proceed: Proceed) -> Any:
        """The interceptor: counts and times every call the App's connections serve and make."""
        started = _now()
        try:
            result = await proceed()
        except BaseException as exc:
            self._series(call).done(outcome(exc), _now() - started)
            raise
        self._series(call).done_ok(_now() - started)
        return result

    def _series(self, call: Call) -> CallSeries:
        """The series of a method at a path in one direction, made on its first call."""
        key = (call.method, call.direction, call.connection.path)
        found = self._calls.get(key)
        if found is None:
            method = call.method
            incoming = call.direction == "incoming"
            found = self.calls.series(call.connection.path, method.path, method.kind.value, incoming)
            self._calls[key] = found
        return found

    def opened(self, conn: ServerConnection[Any]) -> None:
        """The connect hook."""
        labels = (conn.schema.contract.name, conn.path)
        self._child(self.connections_active, *labels).inc()
        self._child(self.connections, *labels, "accepted").inc()

    def closed(self, conn: ServerConnection[Any], code: int | None, reason: str) -> None:
        """The disconnect hook."""
        self._child(self.connections_active, conn.schema.contract.name, conn.path).dec()

    def incident(self, incident: Incident) -> None:
        """The incident listener."""
        kind = incident.kind
        conn = incident.connection
        path = conn.path if conn is not None else incident.path
        self._child(self.incidents, path, kind.value).inc()
        error_type = None if incident.error is None else outcome(incident.error)
        if kind in _REFUSALS:
            self._child(self.connections, self._contract(path), path, error_type or kind.value).inc()
        elif kind is IncidentKind.DEAD_PEER:
            self._child(self.heartbeat_timeouts, self._contract(path), path).inc()
        elif kind in _REFUSED_CALLS and error_type is not None:
            spec = self._method(path, incident.path)
            if spec is not None:  # a method the peer named but nobody serves gets no series
                self.calls.series(path, spec.path, spec.kind.value, True).refused(error_type)

    def broker(self, published: bool, kind: str) -> None:
        """The broker observer: one envelope published or delivered."""
        self._child(self.broker_published if published else self.broker_delivered, kind).inc()

    def _method(self, path: str, method: str) -> MethodSpec | None:
        """The spec of the client-to-server ``method`` of the contract served at ``path``."""
        for app in self._apps:
            route = app.routes.get(path)
            if route is not None:
                return route.schema.contract.client_to_server.by_path.get(method)
        return None

    def _contract(self, path: str) -> str:
        """The name of the contract served at ``path``."""
        for app in self._apps:
            route = app.routes.get(path)
            if route is not None:
                return route.schema.contract.name
        return ""

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


# -- serving the metrics on a port of their own ------------------------------------------------


def serve_metrics(
    host: str, port: int, registry: CollectorRegistry | None = None
) -> tuple[str, Callable[[], None]]:
    """Serve ``registry`` (the default one: this process's metrics) over HTTP on
    ``host:port`` from a thread, at ``/metrics`` (and any other path).

    Returns:
        The metrics' URL (with the port chosen when ``port`` is 0) and a function that
        stops the server.

    Raises:
        OSError: the port cannot be listened on.
    """
    server, thread = prometheus_client.start_http_server(port, addr=host, registry=registry or REGISTRY)
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5.0)

    return f"http://{shown}:{bound}/metrics", stop


def workers_registry(directory: str) -> CollectorRegistry:
    """A registry that sums what the worker processes writing to ``directory`` count
    (prometheus-client's multiprocess mode): what the supervisor of ``--workers`` serves."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


@contextlib.contextmanager
def workers_metrics(host: str, port: int) -> Generator[tuple[str, str, Callable[[int], None]]]:
    """The metrics of the workers of ``grestws serve --workers``: a temporary folder for
    prometheus-client's multiprocess mode, and the sums served on ``host:port``.

    Yields:
        The folder (for the workers' ``$PROMETHEUS_MULTIPROC_DIR``), the metrics' URL, and
        what to call with the pid of a worker that exited.

    Raises:
        OSError: the port cannot be listened on.
    """
    with tempfile.TemporaryDirectory(prefix="grestws-metrics-") as directory:
        url, stop = serve_metrics(host, port, workers_registry(directory))
        try:
            yield directory, url, functools.partial(forget_worker, directory)
        finally:
            stop()


def forget_worker(directory: str, pid: int) -> None:
    """Drop the live gauges of a worker that exited (its counters stay in the sums)."""
    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # pyright: ignore[reportUnknownMemberType]
