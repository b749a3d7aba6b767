"""Seeing what the chat server does: interceptors, Prometheus metrics, OpenTelemetry
traces and the access log.

Run from the repository root: ``python docs/examples/observability.py``. It serves the
chat example's App with all four, beside ``/metrics``, with uvicorn on a free port of
127.0.0.1; two clients chat (with one refusal of each kind), then it prints the metrics
of the calls, the trace of one call and the access log, and stops.
``--chart docs/observability.png`` also draws the metrics (needs matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import socket
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute

import grestws
from examples.chat.contract import (
    ChatApi,
    DeleteMessageRequest,
    ReadOnlyChannel,
    SendMessageRequest,
    WhoIsHereRequest,
)
from examples.chat.server import ChatHandler, ServerChatApi
from grestws.prometheus import PrometheusMetrics
from grestws.tracing import Tracing

# -- Interceptors of your own --------------------------------------------------------------

slow_calls = logging.getLogger("chat.slow")


async def warn_when_slow(call: grestws.Call, proceed: grestws.Proceed) -> Any:
    """Log the calls that take longer than half a second, whatever their outcome."""
    started = time.perf_counter()
    try:
        return await proceed()
    finally:
        took = time.perf_counter() - started
        if took > 0.5:
            slow_calls.warning("%s took %.2f s", call.path, took)


class Maintenance:
    """While ``on``, the chat is read-only: a post is answered UNAVAILABLE (the clients
    send it again once it is over) without reaching the handler."""

    def __init__(self) -> None:
        self.on = False

    async def __call__(self, call: grestws.Call, proceed: grestws.Proceed) -> Any:
        if self.on and call.direction == "incoming" and call.path == "ChatApi.sendMessage":
            raise grestws.UnavailableError("The chat is read-only for maintenance")
        return await proceed()


maintenance = Maintenance()

# -- The App, instrumented -----------------------------------------------------------------

metrics = PrometheusMetrics(CollectorRegistry())  # PrometheusMetrics(): the default registry
spans = InMemorySpanExporter()  # an OTLP exporter in production
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
tracing = Tracing(provider)  # Tracing(): the global tracer provider

app = grestws.App(interceptors=[grestws.AccessLog(), warn_when_slow, maintenance])
app.add(ServerChatApi, ChatHandler)
metrics.instrument(app)
tracing.instrument(app)

site = Starlette(
    routes=[
        WebSocketRoute(ChatApi.path, app),
        Mount("/metrics", app=metrics.asgi_app()),  # GET /metrics/ (/metrics redirects there)
    ],
    lifespan=app.lifespan,
)


def as_user(name: str) -> grestws.SocketSchema[Any, Any, None]:
    """The chat schema of a client with ``name``'s token that sends its trace context."""
    schema: grestws.SocketSchema[Any, Any, None] = ChatApi.use(grestws.BearerAuth(f"secret-{name}")).use(
        tracing.propagation()
    )
    return schema


# -- Running it ------------------------------------------------------------------------------


class Inbox:
    async def new_message(self, msg: Any) -> None:
        pass

    async def typing(self, event: Any) -> None:
        pass

    async def are_you_there(self) -> bool:
        return True


async def chat(url: str) -> None:
    """Two users chat; each kind of refusal once."""
    tracer = provider.get_tracer("chat-client")
    bob = await grestws.connect(url, as_user("bob"), handlers=Inbox())
    with tracer.start_as_current_span("ann's session"):  # the client's spans and the server's: one trace
        ann = await grestws.connect(url, as_user("ann"), handlers=Inbox(), interceptors=[tracing.intercept])
        for text in ("hello", "how are you?", "fine"):
            await ann.outgoing.send_message(SendMessageRequest(text=text, channel_id="general"))
    async with ann, bob:
        await bob.outgoing.who_is_here(WhoIsHereRequest(channel_id="general"))
        with contextlib.suppress(ReadOnlyChannel):
            await bob.outgoing.send_message(SendMessageRequest(text="hear ye", channel_id="announcements"))
        with contextlib.suppress(grestws.ValidationError):
            await bob.outgoing.send_message(SendMessageRequest(text="", channel_id="general"))
        with contextlib.suppress(grestws.ForbiddenError):
            await bob.outgoing.delete_message(DeleteMessageRequest(message_id="m1"))
        maintenance.on = True  # for a third of a second: bob's client sends his post again until then
        asyncio.get_running_loop().call_later(0.3, setattr, maintenance, "on", False)
        await bob.outgoing.send_message(SendMessageRequest(text="back?", channel_id="general"))
    with contextlib.suppress(grestws.NotAuthorizedError):
        await grestws.connect(url, ChatApi.use(grestws.BearerAuth("forged")), reconnect=False)


def call_counts(text: str) -> dict[tuple[str, str], float]:
    """``grestws_requests_total`` by (method, result), from the scraped text."""
    return {
        (sample.labels["method"], sample.labels["result"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "grestws_requests_total"
    }


def draw(counts: dict[tuple[str, str], float], text: str, path: Path) -> None:
    """Calls by method and result, and connections by result, as a PNG."""
    # matplotlib comes with the bench extra; only --chart needs it
    importlib.import_module("matplotlib").use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")

    connections = {
        sample.labels["result"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "grestws_connections_total"
    }
    figure, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.2), width_ratios=(3, 1))
    labels = [f"{method.removeprefix('ChatApi.')}\n{result.lower()}" for method, result in counts]
    colors = ["#2f8f4e" if result == "OK" else "#c0392b" for _, result in counts]
    left.bar(labels, list(counts.values()), color=colors)
    left.set_title("grestws_requests_total{method, result}")
    left.tick_params(axis="x", labelsize=7)
    right.bar(list(connections), list(connections.values()), color="#2f5bd3")
    right.set_title("grestws_connections_total{result}")
    right.tick_params(axis="x", labelsize=8)
    for axes in (left, right):
        axes.yaxis.get_major_locator().set_params(integer=True)
    figure.suptitle("The chat example after a short run (docs/examples/observability.py)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


@contextlib.asynccontextmanager
async def served() -> AsyncGenerator[int]:
    """Serve ``site`` with uvicorn on a free port of 127.0.0.1; yield the port."""
    sock = socket.create_server(("127.0.0.1", 0))  # listening: clients wait until uvicorn serves
    server = uvicorn.Server(uvicorn.Config(site, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await serving


async def main(chart: Path | None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("grestws.access").setLevel(logging.INFO)  # the access log is INFO
    async with served() as port, httpx.AsyncClient() as http:
        await chat(f"ws://127.0.0.1:{port}")
        text = (await http.get(f"http://127.0.0.1:{port}/metrics/")).text
    counts = call_counts(text)
    print("\ncalls by method and result:")
    for (method, result), count in counts.items():
        print(f"  {method:22} {result:18} {count:g}")
    print("\nann's session, one trace: her client's spans and the server's")
    for span in spans.get_finished_spans()[:7]:
        assert span.context is not None
        print(f"  {span.kind.name:8} {span.name:22} trace {span.context.trace_id:032x}")
    if chart is not None:
        draw(counts, text, chart)
        print(f"\nwrote {chart}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The chat example, observed.")
    parser.add_argument("--chart", type=Path, help="draw the metrics into this PNG")
    asyncio.run(main(parser.parse_args().chart))
