"""grestws's pytest plugin, seen from a project that uses it.

Each test writes a small project (an ini, maybe a ``conftest.py``, a test file) with
pytester and runs pytest on it in a subprocess: the plugin is loaded there as in any
project, through the ``pytest11`` entry point of the installed grestws. The projects talk
to the chat example's App (``examples.chat.server``), importable through PYTHONPATH.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

RUN_TIMEOUT = 25.0
"""Seconds one inner pytest run may take."""

PYTEST_ASYNCIO_INI = """
[pytest]
addopts = --strict-markers --strict-config -p no:cacheprovider
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

ANYIO_INI = """
[pytest]
addopts = --strict-markers --strict-config -p no:cacheprovider -p no:asyncio
filterwarnings = error
"""

CONFTEST_APP = """
import pytest

import grestws
from examples.chat.server import app


@pytest.fixture
def grestws_app() -> grestws.App:
    return app
"""

ANYIO_BACKEND = """

@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
"""

IMPORTS = """
import pytest

from examples.chat.contract import ChatApi, SendMessageRequest
from grestws.testkit import expect, when

HELLO = SendMessageRequest(text="hello", channel_id="general")
"""

CHAT_TEST = """
{marker}
async def test_two_users_chat(grestws_client) -> None:
    async with (
        grestws_client(ChatApi, name="ann", token="secret-ann") as ann,
        grestws_client(ChatApi, name="bob", token="secret-bob") as bob,
    ):
        result = await expect(ann.call.send_message(HELLO)).to_match({{"success": True}})
        assert result.message_id
        for client in (ann, bob):
            await expect(client.mock.new_message).to_match(
                {{"id": result.message_id, "text": "hello", "sender_id": "ann"}}
            )
"""

MARKERS = {"strict": "@pytest.mark.asyncio", "auto": "", "anyio": "@pytest.mark.anyio"}
"""What marks an async test in each setup: pytest-asyncio's two modes, and anyio's plugin."""


def source(*parts: str) -> str:
    return "\n".join(textwrap.dedent(part) for part in parts)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An empty project whose inner runs can import ``examples.chat`` from this checkout,
    and print their short summaries on lines long enough to match."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("COLUMNS", "200")
    return pytester


def setup_project(project: pytest.Pytester, runner: str, *, app_fixture: bool = True) -> None:
    """The ini for ``runner`` (``strict``, ``auto``: pytest-asyncio's modes; ``anyio``), and
    a conftest with a ``grestws_app`` fixture unless ``app_fixture`` is False."""
    if runner == "anyio":
        project.makeini(ANYIO_INI)
        project.makeconftest(source(CONFTEST_APP if app_fixture else "import pytest\n", ANYIO_BACKEND))
    else:
        project.makeini(PYTEST_ASYNCIO_INI.format(mode=runner))
        if app_fixture:
            project.makeconftest(CONFTEST_APP)


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess(*args, timeout=RUN_TIMEOUT)


# -- the fixtures under each async test runner ----------------------------------------------


@pytest.mark.parametrize("runner", ["strict", "auto", "anyio"])
def test_grestws_client_talks_to_the_conftest_app(project: pytest.Pytester, runner: str) -> None:
    setup_project(project, runner)
    project.makepyfile(test_chat=source(IMPORTS, CHAT_TEST.format(marker=MARKERS[runner])))
    result = run(project)
    result.assert_outcomes(passed=1)
    if runner == "anyio":
        result.stdout.no_fnmatch_line("asyncio: mode=*")  # pytest-asyncio was not loaded
    else:
        result.stdout.fnmatch_lines([f"asyncio: mode=*{runner.upper()}*"])


# -- what a failed test's report shows ---------------------------------------------------


def test_a_failed_match_shows_the_diff_and_the_wire_log(project: pytest.Pytester) -> None:
    setup_project(project, "auto")
    project.makepyfile(
        test_fail=source(
            IMPORTS,
            """
            async def test_wrong_expectation(grestws_client) -> None:
                async with grestws_client(ChatApi, name="ann", token="secret-ann") as ann:
                    await expect(ann.call.send_message(HELLO)).to_match({"success": False})
            """,
        )
    )
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: ann.call.send_message: the result does not match:",
            "*  $.success: expected False, got True",
            "*actual: SendMessageResponse(success=True, message_id=*",
            # the report section, after the traceback: every frame, each way
            "*- grestws wire log: ann -*",
            "wire log of ann (-> sent, <- received):",
            '   -> h:::{"authorization":"Bearer secret-ann"}',
            "   <- k:::*",
            '   -> r:ChatApi.sendMessage:1:{"text":"hello","channelId":"general"}',
            '   <- m:ChatApi.newMessage::{*"text":"hello","senderId":"ann"*}',
            '   <- s:ChatApi.sendMessage:1:{"success":true,*}',
            "   xx closed 1000 ''",
            "*FAILED test_fail.py::test_wrong_expectation - AssertionError: *",
        ]
    )


def test_a_passed_test_gets_no_wire_log(project: pytest.Pytester) -> None:
    setup_project(project, "auto")
    project.makepyfile(test_chat=source(IMPORTS, CHAT_TEST.format(marker="")))
    result = run(project, "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*grestws wire log*")


def test_an_unconsumed_push_fails_the_test(project: pytest.Pytester) -> None:
    setup_project(project, "auto")
    project.makepyfile(
        test_unconsumed=source(
            IMPORTS,
            """
            async def test_push_never_checked(grestws_client) -> None:
                async with grestws_client(ChatApi, name="ann", token="secret-ann") as ann:
                    await expect(ann.call.send_message(HELLO)).to_match({"success": True})


            async def test_push_ignored_on_purpose(grestws_client) -> None:
                async with grestws_client(ChatApi, name="bob", token="secret-bob") as bob:
                    when(bob.mock.new_message).ignore()
                    await expect(bob.call.send_message(HELLO)).to_match({"success": True})
            """,
        )
    )
    result = run(project)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*UnconsumedCallsError: ann: calls from the server that no expectation consumed:",
            "*  ann.mock.new_message(Message(*text='hello', sender_id='ann'*))",
            "*- grestws wire log: ann -*",
            "   <- m:ChatApi.newMessage::*",
            "*FAILED test_unconsumed.py::test_push_never_checked - *UnconsumedCallsError*",
        ]
    )
    result.stdout.no_fnmatch_line("*grestws wire log: bob*")


# -- clients left connected ---------------------------------------------------------------

LEFT_CONNECTED = """
{marker}
async def test_left_connected(grestws_client) -> None:
    ann = grestws_client(ChatApi, name="ann", token="secret-ann")
    await ann.connect()


{marker}
async def test_left_connected_and_failed(grestws_client) -> None:
    bob = grestws_client(ChatApi, name="bob", token="secret-bob")
    await bob.connect()
    assert bob.state.value == "closed"


{marker}
async def test_disconnected(grestws_client) -> None:
    cy = grestws_client(ChatApi, name="cy", token="secret-cy")
    await cy.connect()
    await cy.disconnect()
"""

STILL_CONNECTED = (
    "test clients still connected when the test ended: ann; "
    "use `async with grestws_client(...) as client:` or `await client.disconnect()`"
)


def assert_only_the_passed_test_failed_for_its_client(result: pytest.RunResult) -> None:
    # the passed test errors at teardown; the failed one reports only its own failure
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_left_connected*",
            STILL_CONNECTED,
            "*- grestws wire log: ann -*",
            "*ERROR test_left.py::test_left_connected - Failed: test clients still connected*",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_left_connected_and_failed*")
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_disconnected*")


def test_a_client_left_connected_fails_a_passed_test_on_a_module_loop(project: pytest.Pytester) -> None:
    """With the event loop kept past the test (``loop_scope="module"``), the connection
    is still open when the fixture checks it."""
    setup_project(project, "strict")
    marker = '@pytest.mark.asyncio(loop_scope="module")'
    project.makepyfile(test_left=source(IMPORTS, LEFT_CONNECTED.format(marker=marker)))
    assert_only_the_passed_test_failed_for_its_client(run(project))


@pytest.mark.parametrize("runner", ["strict", "auto", "anyio"])
def test_a_client_left_connected_fails_a_passed_test(project: pytest.Pytester, runner: str) -> None:
    setup_project(project, runner)
    marker = MARKERS[runner]
    project.makepyfile(test_left=source(IMPORTS, LEFT_CONNECTED.format(marker=marker)))
    assert_only_the_passed_test_failed_for_its_client(run(project))


# -- no App --------------------------------------------------------------------------------


@pytest.mark.parametrize("runner", ["auto", "anyio"])
def test_no_app_fixture_and_no_app_given_fails_clearly(project: pytest.Pytester, runner: str) -> None:
    setup_project(project, runner, app_fixture=False)
    marker = MARKERS[runner]
    project.makepyfile(
        test_no_app=source(
            IMPORTS,
            f"""
            from examples.chat.server import app


            {marker}
            async def test_without_app(grestws_client) -> None:
                async with grestws_client(ChatApi, token="secret-ann"):
                    pass


            {marker}
            async def test_with_app_given(grestws_client) -> None:
                async with grestws_client(ChatApi, app, token="secret-ann") as ann:
                    assert ann.state.value == "open"
            """,
        )
    )
    result = run(project)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_without_app _*",
            "grestws_client was given no App: define a `grestws_app` fixture that returns your "
            "grestws.App (in conftest.py), or pass one: grestws_client(Schema, app)",
            "*FAILED test_no_app.py::test_without_app - Failed: grestws_client was given no App*",
        ]
    )


def test_an_async_grestws_app_fixture_works(project: pytest.Pytester) -> None:
    setup_project(project, "auto", app_fixture=False)
    project.makeconftest(CONFTEST_APP.replace("def grestws_app", "async def grestws_app"))
    project.makepyfile(test_chat=source(IMPORTS, CHAT_TEST.format(marker="")))
    run(project).assert_outcomes(passed=1)


# -- pytest --fixtures -------------------------------------------------------------------


def test_pytest_fixtures_lists_the_plugins_fixtures(project: pytest.Pytester) -> None:
    setup_project(project, "auto", app_fixture=False)
    project.makepyfile(test_nothing="def test_nothing() -> None:\n    pass\n")
    result = run(project, "--fixtures")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*- fixtures defined from grestws.testkit.plugin -*",
            "grestws_app -- *grestws/testkit/plugin.py:*",
            "*The App that ``grestws_client`` connects to when given none: define your own",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*- fixtures defined from grestws.testkit.plugin -*",
            "grestws_client -- *grestws/testkit/plugin.py:*",
            "*Make test clients of an App (``grestws_app`` unless given) or a URL; see",
        ]
    )
