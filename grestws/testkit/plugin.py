"""grestws's pytest plugin, loaded by itself once grestws is installed (``pytest11``).

Fixtures:

``grestws_client``
    Makes test clients: ``grestws_client(ChatApi, token="secret-ann")`` is
    :func:`~grestws.testkit.call_on` with the App of ``grestws_app`` (or give one, or a URL,
    as the second argument). At the end of a test that passed, a client still connected
    fails it: end each with ``async with`` or ``await client.disconnect()``.
``grestws_app``
    The App a test's clients talk to; define it in your ``conftest.py``.

A failed test's report gets a section with the wire log of every test client it made.

The fixtures are plain (not async), so they work the same under pytest-asyncio, in either
mode, and under anyio's pytest plugin with the asyncio backend.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from grestws.app import App
    from grestws.contract.contract import SocketSchema
    from grestws.testkit.client import ClientFactory, TestClient

__all__ = ("grestws_app", "grestws_client")

C2S = TypeVar("C2S")
S2C = TypeVar("S2C")

_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def grestws_app() -> App | None:
    """The App that ``grestws_client`` connects to when given none: define your own
    (plain or async) in ``conftest.py``. This default gives none."""
    return None


@pytest.fixture
def grestws_client(request: pytest.FixtureRequest, grestws_app: App | None) -> Iterator[ClientFactory]:
    """Make test clients of an App (``grestws_app`` unless given) or a URL; see
    :func:`grestws.testkit.call_on`."""
    from grestws.testkit.client import call_on

    made: list[TestClient[Any, Any]] = []

    def factory(
        schema: SocketSchema[C2S, S2C, Any], target: App | str | None = None, /, **options: Any
    ) -> TestClient[C2S, S2C]:
        if target is None:
            if grestws_app is None:
                pytest.fail(
                    "grestws_client was given no App: define a `grestws_app` fixture that returns "
                    "your grestws.App (in conftest.py), or pass one: grestws_client(Schema, app)",
                    pytrace=False,
                )
            target = grestws_app
        client = call_on(schema, target, **options)
        made.append(client)
        return client

    yield factory
    left = [client.name for client in made if client.left_connected]
    if left and request.node.stash.get(_PASSED, False):
        pytest.fail(
            f"test clients still connected when the test ended: {', '.join(left)}; "
            "use `async with grestws_client(...) as client:` or `await client.disconnect()`",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    from grestws.testkit.wire import collecting

    collecting(True)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    from grestws.testkit.wire import collected, collecting

    if report.when == "call":
        item.stash[_PASSED] = report.passed
    if report.failed:
        for log in collected():
            report.sections.append((f"grestws wire log: {log.name}", log.render()))
    if report.when == "teardown":
        collecting(False)
    return report
