"""What the checkers infer for the metrics, the traces and the access log.

Each ``reveal_type`` line ends with the type both checkers must print, as described in
``test_typing.py``. The functions are never called; importing the module runs nothing.
"""

from __future__ import annotations

from typing import reveal_type

from prometheus_client import CollectorRegistry

import grestws
from examples.chat.contract import ChatApi
from grestws.prometheus import PrometheusMetrics, serve_metrics
from grestws.tracing import Tracing


def instrumented() -> None:
    app = grestws.App(interceptors=[grestws.AccessLog()])
    metrics = PrometheusMetrics(CollectorRegistry(), namespace="chat")
    reveal_type(metrics.instrument(app))  # R: App
    tracing = Tracing()
    reveal_type(tracing.instrument(app))  # R: App
    reveal_type(tracing.propagation())  # R: TraceContext
    reveal_type(grestws.outcome(None))  # R: str
    schema = ChatApi.use(tracing.propagation())
    grestws.Client("ws://127.0.0.1:8765", schema, interceptors=[tracing.intercept, metrics.intercept])
    url, stop = serve_metrics("127.0.0.1", 0)
    reveal_type(url)  # R: str
    stop()
