"""One module per peer, each with a ``server`` and a ``client`` side.

``python -m benchmarks.peers.<peer> server --loop uvloop`` prints its port when it listens;
``python -m benchmarks.peers.<peer> client --port P --shape sequential ...`` prints one
JSON result line. The orchestrator (:mod:`benchmarks.run`) starts both.

``grestws_uvicorn_peer`` and ``socketio_uvicorn_peer`` reuse the handlers and the client of
``grestws_peer`` and ``socketio_peer`` and serve them with uvicorn (:mod:`._uvicorn`).
``grestws_metrics_peer`` and ``grestws_traced_peer`` serve the ``grestws`` App with
Prometheus metrics on, and with metrics and OpenTelemetry tracing on.
"""

from __future__ import annotations

PEERS = (
    "websockets",
    "socketio",
    "grestws",
    "socketio-uvicorn",
    "grestws-uvicorn",
    "grestws-metrics",
    "grestws-traced",
)
"""The peers, baseline first; each is ``benchmarks.peers.<name>_peer`` (``-`` as ``_``)."""
