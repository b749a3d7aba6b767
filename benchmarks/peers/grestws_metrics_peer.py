"""grestws with Prometheus metrics on: the ``grestws`` peer's App, instrumented with
:class:`grestws.prometheus.PrometheusMetrics` (every call counted and timed, connections
counted) on ``grestws.serve()``. The client is the ``grestws`` peer's, uninstrumented: the
report's ``grestws-metrics ÷ grestws`` is what the server's metrics cost.
"""

from __future__ import annotations

from benchmarks.peers.grestws_peer import GrestwsPeer, bench_app, check_origin, serve_app
from benchmarks.shapes import main
from grestws.prometheus import PrometheusMetrics


async def _serve() -> int:
    return await serve_app(PrometheusMetrics().instrument(bench_app()))


if __name__ == "__main__":
    check_origin()
    main(_serve, GrestwsPeer)
