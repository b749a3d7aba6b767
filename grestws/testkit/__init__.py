"""Tools for testing grestws applications and grestws itself, without sockets.

:func:`memory_pair` gives two connected in-memory transports that a
:class:`~grestws.session.Session` (or anything that speaks the
:class:`~grestws.session.Transport` protocol) can run over.
"""

from __future__ import annotations

from grestws.transports.memory import MemoryTransport, memory_pair

__all__ = ("MemoryTransport", "memory_pair")
