"""One module per peer, each with a ``server`` and a ``client`` side.

``python -m benchmarks.peers.<peer> server --loop uvloop`` prints its port when it listens;
``python -m benchmarks.peers.<peer> client --port P --shape sequential ...`` prints one
JSON result line. The orchestrator (:mod:`benchmarks.run`) starts both.
"""

from __future__ import annotations

PEERS = ("websockets", "socketio", "grestws")
"""The peers, baseline first; each is ``benchmarks.peers.<name>_peer``."""
