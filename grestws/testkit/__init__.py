"""Test grestws applications in pytest: typed calls, expectations on pushes, no sockets.

::

    from grestws.testkit import call_on, expect, when

    async def test_chat() -> None:
        async with call_on(ChatApi, app, token="secret-ann") as ann:
            await expect(ann.call.send_message(hello)).to_match({"success": True})
            await expect(ann.mock.new_message).to_match({"text": "hello"})

:func:`call_on` makes a :class:`TestClient` connected to an App in-process (or to a URL);
:func:`expect` checks what a call gives and what the server calls on the client;
:func:`when` sets how the client answers the server's requests. The pytest plugin (loaded
by itself once grestws is installed) adds the ``grestws_client`` and ``grestws_app``
fixtures and the wire log to the report of a failed test. :func:`memory_pair` gives two
connected in-memory transports, for code that runs a
:class:`~grestws.session.Session` itself.
"""

from __future__ import annotations

from grestws.testkit.client import Call, ClientFactory, TestClient, call_on
from grestws.testkit.expect import Answer, CallExpectation, PushExpectation, expect, when
from grestws.testkit.inprocess import AppDialer
from grestws.testkit.matching import assert_matches, mismatches
from grestws.testkit.mocks import UnconsumedCallsError
from grestws.testkit.wire import WireLog
from grestws.transports.memory import MemoryTransport, memory_pair

__all__ = (
    "Answer",
    "AppDialer",
    "Call",
    "CallExpectation",
    "ClientFactory",
    "MemoryTransport",
    "PushExpectation",
    "TestClient",
    "UnconsumedCallsError",
    "WireLog",
    "assert_matches",
    "call_on",
    "expect",
    "memory_pair",
    "mismatches",
    "when",
)
