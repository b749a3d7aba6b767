"""One module per peer, each with a ``server`` and a ``client`` side.

``python -m benchmarks.peers.<peer> server --loop uvloop`` prints its port when it listens;
``python -m benchmarks.peers.<peer> client --port P --shape sequential ...`` prints one
JSON result line. The orchestrator (:mod:`benchmarks.run`) starts both.

``grestws_uvicorn_peer`` and ``socketio_uvicorn_peer`` reuse the handlers and the client of
``grestws_peer`` and ``socketio_peer`` and serve them with uvicorn (:mod:`._uvicorn`).
``grestws_metrics_peer`` and ``grestws_traced_peer`` serve the ``grestws`` App with
Prometheus metrics on, and with metrics and OpenTelemetry tracing on. ``picows_peer`` is
plain picows, a second bare transport beside websockets; ``grestws_picows_peer`` serves the
``grestws`` App on grestws's picows transport and connects with its picows dialer.
"""

from __future__ import annotations

GRESTWS_PICOWS = "grestws-picows"
"""The peer that needs grestws's picows transport (``grestws.transports.picows``)."""

PEERS = (
    "websockets",
    "picows",
    "socketio",
    "grestws",
    GRESTWS_PICOWS,
    "socketio-uvicorn",
    "grestws-uvicorn",
    "grestws-metrics",
    "grestws-traced",
)
"""The peers, baseline first; each is ``benchmarks.peers.<name>_peer`` (``-`` as ``_``)."""
