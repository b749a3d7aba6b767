"""grestws with metrics and tracing on: the ``grestws-metrics`` server, plus
:class:`grestws.tracing.Tracing` with the OpenTelemetry SDK: a span per call, ended into
a batch span processor whose exporter drops what it is given (the cost of making and
handing over the spans, not of shipping them). The client is the ``grestws`` peer's.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from benchmarks.peers.grestws_peer import GrestwsPeer, bench_app, check_origin, serve_app
from benchmarks.shapes import main
from grestws.prometheus import PrometheusMetrics
from grestws.tracing import Tracing


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def _serve() -> int:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Dropped()))
    return await serve_app(Tracing(provider).instrument(PrometheusMetrics().instrument(bench_app())))


if __name__ == "__main__":
    check_origin()
    main(_serve, GrestwsPeer)
