"""Prometheus metrics (:mod:`grestws.prometheus`): known traffic over real sockets, then a
scrape of ``/metrics`` over HTTP from a real uvicorn, read with prometheus-client's own
parser, and exact counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Mount

import grestws
from examples.chat.contract import ChatApi, SendMessageRequest
from examples.chat.server import ChatHandler, ServerChatApi
from grestws.call_metrics import CollectedCalls, NativeCalls
from grestws.prometheus import DURATION_BUCKETS, PrometheusMetrics
from tests.conftest import StartServer
from tests.processes import uvicorn_in_process
from tests.proxy import TcpProxy
from tests.scrape import Samples, eventually, scrape, value
from tests.support import WAIT, ChatInbox, Hub, Note, Question, RoomApi, RoomClientHandler, RoomFull, room_app


class Scraper:
    """Scrapes one server's metrics."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    def __call__(self) -> Awaitable[Samples]:
        return scrape(self.http, self.url)


@pytest.fixture
async def metrics_and_scraper() -> AsyncGenerator[tuple[PrometheusMetrics, Scraper]]:
    """Metrics in a registry of their own, served by a real uvicorn at ``/metrics``."""
    metrics = PrometheusMetrics(CollectorRegistry())
    site = Starlette(routes=[Mount("/metrics", app=metrics.asgi_app())])
    async with uvicorn_in_process(site) as port, httpx.AsyncClient(timeout=WAIT) as http:
        yield metrics, Scraper(http, f"http://127.0.0.1:{port}/metrics/")


def as_user(name: str) -> grestws.SocketSchema[Any, Any, None]:
    return ChatApi.use(grestws.BearerAuth(f"secret-{name}"))


async def counted(scraper: Scraper, name: str, expected: float, **labels: str) -> Samples:
    return await eventually(scraper.http, scraper.url, name, expected, **labels)


class TestCounts:
    @pytest.mark.logs_errors
    async def test_calls_by_method_and_result(
        self, start_server: StartServer, metrics_and_scraper: tuple[PrometheusMetrics, Scraper]
    ) -> None:
        metrics, scraper = metrics_and_scraper
        server = await start_server(metrics.instrument(room_app(Hub())))
        path = RoomApi.path
        async with grestws.connect(
            server.url, RoomApi, handlers=RoomClientHandler(), reconnect=False
        ) as client:
            for text in ("a", "b", "c"):
                await client.outgoing.post(Note(text=text))
            with pytest.raises(RoomFull):
                await client.outgoing.post(Note(text="x", room_id="full"))
            with pytest.raises(grestws.ServerError):
                await client.outgoing.post(Note(text="x", room_id="crash"))
            with pytest.raises(grestws.ValidationError):
                await client.outgoing.post(Note(text=""))
            await client.outgoing.ask_client(Question(text="yes?"))
            await client.outgoing.poke()
            await client.outgoing.poke()
            samples = await counted(
                scraper,
                "grestws_requests_total",
                2,
                path=path,
                method="RoomApi.poke",
                kind="notify",
                result="OK",
            )
        post = {"path": path, "method": "RoomApi.post", "kind": "request"}
        assert value(samples, "grestws_requests_total", **post, result="OK") == 3
        assert value(samples, "grestws_requests_total", **post, result="ROOM_FULL") == 1
        assert value(samples, "grestws_requests_total", **post, result="SERVER_ERROR") == 1
        assert value(samples, "grestws_requests_total", **post, result="VALIDATION_ERROR") == 1
        # the handler served five of the six: the invalid one was refused before it
        assert value(samples, "grestws_request_duration_seconds_count", **post) == 5
        assert value(samples, "grestws_request_duration_seconds_bucket", **post, le="+Inf") == 5
        assert value(samples, "grestws_request_duration_seconds_sum", **post) > 0
        answer = {"path": path, "method": "RoomApi.answer", "kind": "request"}
        assert value(samples, "grestws_out_requests_total", **answer, result="OK") == 1
        assert value(samples, "grestws_out_request_duration_seconds_count", **answer) == 1
        assert value(samples, "grestws_incidents_total", path=path, kind="invalid_payload") == 1
        assert value(samples, "grestws_incidents_total", path=path, kind="handler_failed") == 1

    async def test_connections_opened_refused_and_closed(
        self, start_server: StartServer, metrics_and_scraper: tuple[PrometheusMetrics, Scraper]
    ) -> None:
        metrics, scraper = metrics_and_scraper
        app = grestws.App(limits=grestws.Limits(max_connections=2))
        app.add(ServerChatApi, ChatHandler)
        server = await start_server(metrics.instrument(app))
        labels = {"contract": "ChatApi", "path": ChatApi.path}
        ann = await grestws.connect(
            server.url, ChatApi.use(grestws.BearerAuth("secret-ann")), handlers=ChatInbox()
        )
        bob = await grestws.connect(
            server.url, ChatApi.use(grestws.BearerAuth("secret-bob")), handlers=ChatInbox()
        )
        try:
            with pytest.raises(grestws.ConnectError):  # over max_connections: HTTP 503
                await grestws.connect(
                    server.url, ChatApi.use(grestws.BearerAuth("secret-cid")), reconnect=False
                )
            samples = await scraper()
            assert value(samples, "grestws_connections_active", **labels) == 2
            await ann.outgoing.send_message(SendMessageRequest(text="hi", channel_id="general"))
        finally:
            await bob.close()
        with pytest.raises(grestws.NotAuthorizedError):
            await grestws.connect(server.url, ChatApi.use(grestws.BearerAuth("forged")), reconnect=False)
        await ann.close()
        samples = await counted(scraper, "grestws_connections_active", 0, **labels)
        assert value(samples, "grestws_connections_total", **labels, result="accepted") == 2
        assert value(samples, "grestws_connections_total", **labels, result="NOT_AUTHORIZED") == 1
        assert value(samples, "grestws_connections_total", **labels, result="connection_refused") == 1
        assert value(samples, "grestws_incidents_total", path=ChatApi.path, kind="handshake_refused") == 1

    async def test_a_call_to_an_unknown_method_makes_no_series(
        self, start_server: StartServer, metrics_and_scraper: tuple[PrometheusMetrics, Scraper]
    ) -> None:
        metrics, scraper = metrics_and_scraper
        server = await start_server(metrics.instrument(room_app(Hub())))
        async with grestws.connect(server.url, RoomApi, reconnect=False) as client:
            (conn,) = server.app.connections
            del conn
            await client.outgoing.double(1)
        samples = await scraper()
        methods = {
            dict(labels).get("method")
            for (name, labels) in samples
            if name.startswith(("grestws_requests", "grestws_request_duration"))
        }
        assert methods == {"RoomApi.double"}


@pytest.mark.websockets_only("the server's own liveness watch: an ASGI server runs its own")
async def test_a_dead_peer_is_a_heartbeat_timeout(
    start_server: StartServer, metrics_and_scraper: tuple[PrometheusMetrics, Scraper]
) -> None:
    metrics, scraper = metrics_and_scraper
    server = await start_server(metrics.instrument(room_app(Hub())), ping_interval=0.1, ping_timeout=0.2)
    async with TcpProxy(server.port) as proxy:
        client = grestws.Client(f"ws://127.0.0.1:{proxy.port}", RoomApi, ping_interval=None, reconnect=False)
        await client.connect()
        try:
            await asyncio.wait_for(client.outgoing.double(1), WAIT)
            proxy.black_hole()
            samples = await counted(
                scraper, "grestws_heartbeat_timeouts_total", 1, contract="RoomApi", path=RoomApi.path
            )
            assert value(samples, "grestws_incidents_total", path=RoomApi.path, kind="dead_peer") == 1
            await proxy.close()
        finally:
            await client.close()


def test_two_instruments_need_two_registries() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusMetrics(registry)
    PrometheusMetrics(registry, namespace="other")


def test_both_ways_of_keeping_the_call_series_agree() -> None:
    """CollectedCalls (one process) and NativeCalls (prometheus-client's multiprocess mode,
    for --workers) give the same samples for the same calls."""

    def samples_of(kind: type[CollectedCalls] | type[NativeCalls]) -> dict[tuple[str, frozenset[Any]], float]:
        registry = CollectorRegistry()
        calls = kind("grestws", registry, DURATION_BUCKETS)
        served = calls.series("/ws", "A.b", "request", True)
        served.done_ok(0.0003)
        served.done_ok(0.0005)  # on a bucket's bound: counted in it
        served.done("ROOM_FULL", 0.5)
        served.refused("VALIDATION_ERROR")
        calls.series("/ws", "A.c", "request", False).done("TIMEOUT", 40.0)
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for metric in registry.collect()
            for sample in metric.samples
            if not sample.name.endswith("_created") and sample.value
        }

    collected, native = samples_of(CollectedCalls), samples_of(NativeCalls)
    assert collected == native
    bucket = frozenset({"path": "/ws", "method": "A.b", "kind": "request", "le": "0.0005"}.items())
    assert collected["grestws_request_duration_seconds_bucket", bucket] == 2
    inf = frozenset({"path": "/ws", "method": "A.c", "kind": "request", "le": "+Inf"}.items())
    assert collected["grestws_out_request_duration_seconds_bucket", inf] == 1
