"""``grestws serve`` as a real subprocess: it serves, answers, and stops cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

import grestws
from examples.chat.contract import ChatApi, SendMessageRequest
from tests.cli_apps import HangApi
from tests.support import ChatInbox

ROOT = Path(__file__).resolve().parents[1]
START_WAIT = 15.0
WAIT = 5.0
LISTENING = re.compile(r"listening on (ws://127\.0\.0\.1:(\d+)/ws/chat)$")
SCRIPT = Path(sys.executable).parent / "grestws"


class Served:
    """A running ``grestws serve`` process and what it has logged so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def read_until(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """Read log lines until one matches ``pattern``; fail at end of output or after the deadline."""
        assert self.process.stderr is not None

        async def scan() -> re.Match[str]:
            assert self.process.stderr is not None
            while line := await self.process.stderr.readline():
                text = line.decode().rstrip()
                self.lines.append(text)
                if match := pattern.search(text):
                    return match
            raise AssertionError(f"no line matching {pattern.pattern!r} in:\n" + "\n".join(self.lines))

        return await asyncio.wait_for(scan(), START_WAIT)

    async def finish(self) -> int:
        """Wait for the exit (bounded) and read the rest of the log; the exit code."""
        assert self.process.stderr is not None
        rest = await asyncio.wait_for(self.process.stderr.read(), WAIT)
        self.lines.extend(rest.decode().splitlines())
        return await asyncio.wait_for(self.process.wait(), WAIT)


@contextlib.asynccontextmanager
async def run_cli(command: Sequence[str], cwd: Path = ROOT) -> AsyncIterator[Served]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(process)
    try:
        yield served
    finally:
        if process.returncode is None:
            process.kill()
            await served.finish()


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "grestws", "serve", *args]


async def chat_round_trip(url: str) -> None:
    """Send a message through the served chat app and receive its push."""
    inbox = ChatInbox()
    async with grestws.connect(
        url, ChatApi.use(grestws.BearerAuth("secret-tester")), handlers=inbox
    ) as client:
        reply = await asyncio.wait_for(
            client.outgoing.send_message(SendMessageRequest(text="over the wire", channel_id="general")),
            WAIT,
        )
        message = await asyncio.wait_for(inbox.messages.get(), WAIT)
    assert reply.success
    assert (message.id, message.text) == (reply.message_id, "over the wire")
    assert message.sender_id == "tester"


class TestServe:
    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
    async def test_serves_and_stops_on_a_signal(self, sig: signal.Signals) -> None:
        command = serve_command("examples.chat.server:app", "--host", "127.0.0.1", "--port", "0")
        async with run_cli(command) as served:
            match = await served.read_until(LISTENING)
            url = match[1].removesuffix("/ws/chat")
            assert int(match[2]) > 0
            await chat_round_trip(url)
            served.process.send_signal(sig)
            assert await served.finish() == 0
        log = "\n".join(served.lines)
        assert "shutting down" in log
        assert served.lines[-1].endswith("grestws: stopped")
        assert "Traceback" not in log

    async def test_on_uvloop(self) -> None:
        command = serve_command("examples.chat.server:app", "--port", "0", "--loop", "uvloop")
        async with run_cli(command) as served:
            match = await served.read_until(LISTENING)
            await chat_round_trip(match[1].removesuffix("/ws/chat"))
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0
        assert served.lines[-1].endswith("grestws: stopped")

    async def test_console_script(self) -> None:
        assert SCRIPT.exists()
        command = [str(SCRIPT), "serve", "examples.chat.server:app", "--host", "127.0.0.1", "--port", "0"]
        async with run_cli(command) as served:
            match = await served.read_until(LISTENING)
            await chat_round_trip(match[1].removesuffix("/ws/chat"))
            served.process.send_signal(signal.SIGINT)
            assert await served.finish() == 0
        assert served.lines[-1].endswith("grestws: stopped")

    async def test_signal_with_a_client_still_connected(self) -> None:
        command = serve_command("examples.chat.server:app", "--port", "0")
        async with run_cli(command) as served:
            match = await served.read_until(LISTENING)
            schema = ChatApi.use(grestws.BearerAuth("secret-tester"))
            client = await asyncio.wait_for(grestws.connect(match[1].removesuffix("/ws/chat"), schema), WAIT)
            closed: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue()
            client.on_close(lambda code, reason: closed.put_nowait((code, reason)))
            served.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(closed.get(), WAIT) == (1000, "Server shutting down")
            assert await served.finish() == 0
            await client.close()

    async def test_transport_options(self) -> None:
        command = serve_command(
            "examples.chat.server:app", "--port", "0", "--ping-interval", "0", "--compression"
        )
        async with run_cli(command) as served:
            match = await served.read_until(LISTENING)
            await chat_round_trip(match[1].removesuffix("/ws/chat"))
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0

    async def test_port_in_use(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            async with run_cli(serve_command("examples.chat.server:app", "--port", str(port))) as served:
                assert await served.finish() == 1
        assert f"cannot listen on 127.0.0.1:{port}" in "\n".join(served.lines)


class TestForcedShutdown:
    async def test_a_second_signal_cancels_the_calls_in_flight(self) -> None:
        async with run_cli(serve_command("tests.cli_apps:hang_app", "--port", "0")) as served:
            match = await served.read_until(re.compile(r"listening on (ws://\S+)$"))
            async with grestws.connect(match[1], HangApi) as client:
                call = asyncio.create_task(client.outgoing.hang())
                await served.read_until(re.compile("hang started"))
                served.process.send_signal(signal.SIGINT)
                await served.read_until(re.compile(r"waiting up to 60 s for 1 call in flight"))
                served.process.send_signal(signal.SIGTERM)
                await served.read_until(re.compile("shutdown forced: cancelling 1 call in flight"))
                with pytest.raises(grestws.ConnectionClosedError):
                    await asyncio.wait_for(call, WAIT)
            assert await served.finish() == 1
        log = "\n".join(served.lines)
        assert "hang cancelled" in log
        assert served.lines[-1].endswith("grestws: stopped")
        assert "Traceback" not in log

    async def test_no_waiting_line_without_calls_in_flight(self) -> None:
        async with run_cli(serve_command("tests.cli_apps:hang_app", "--port", "0")) as served:
            await served.read_until(re.compile("listening on"))
            served.process.send_signal(signal.SIGINT)
            assert await served.finish() == 0
        log = "\n".join(served.lines)
        assert "waiting up to" not in log
        assert "forced" not in log


class TestBadOptions:
    @pytest.mark.parametrize("port", ["99999", "65536", "-1", "http"])
    async def test_a_port_out_of_range(self, port: str) -> None:
        async with run_cli(serve_command("examples.chat.server:app", "--port", port)) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert code == 2
        assert "usage: grestws serve" in log
        assert "argument --port: expected a port" in log
        assert "Traceback" not in log

    async def test_uvloop_not_installed(self) -> None:
        # An entry of None in sys.modules makes the import fail as if uvloop were not installed.
        script = (
            "import sys; sys.modules['uvloop'] = None; from grestws.cli import main; "
            "sys.exit(main(['serve', 'examples.chat.server:app', '--port', '0', '--loop', 'uvloop']))"
        )
        async with run_cli([sys.executable, "-W", "error", "-c", script]) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert code == 2
        assert "--loop uvloop needs uvloop: pip install 'grestws[uvloop]'" in log
        assert "never awaited" not in log
        assert "Traceback" not in log

    async def test_unknown_log_level(self) -> None:
        async with run_cli(serve_command("examples.chat.server:app", "--log-level", "bogus")) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert code == 2
        assert "--log-level: invalid choice" in log
        assert "Traceback" not in log

    @pytest.mark.parametrize("seconds", ["-1", "nan", "inf", "soon"])
    async def test_a_bad_number_of_seconds(self, seconds: str) -> None:
        command = serve_command("examples.chat.server:app", "--ping-timeout", seconds)
        async with run_cli(command) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert code == 2
        assert "--ping-timeout" in log
        assert "Traceback" not in log


class TestRefuseToStart:
    async def test_an_app_with_unresolvable_permissions_does_not_start(self) -> None:
        async with run_cli(serve_command("tests.test_permissions:unservable_app", "--port", "0")) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert code == 2
        assert "this App cannot be served" in log
        assert "Board.write at /board" in log
        assert "listening on" not in log
        assert "Traceback" not in log


class TestBadTarget:
    @pytest.mark.parametrize(
        ("target", "message"),
        [
            ("nope:app", "No module named 'nope'"),
            ("examples.chat.server:missing", "module 'examples.chat.server' has no attribute 'missing'"),
            ("examples.chat.server", "expected MODULE:ATTR"),
            ("examples.chat.server:room", "examples.chat.server:room is a Room, not a grestws.App"),
        ],
    )
    async def test_exits_with_a_clear_message(self, target: str, message: str) -> None:
        async with run_cli(serve_command(target, "--port", "0")) as served:
            code = await served.finish()
        assert code == 2
        log = "\n".join(served.lines)
        assert f"grestws: error: {message}" in log
        assert "Traceback" not in log

    @pytest.mark.parametrize(
        "target", ["examples.chat.server:ChatHandler", "examples.chat.contract:ChatServer"]
    )
    async def test_a_callable_that_is_no_app_factory(self, target: str) -> None:
        async with run_cli(serve_command(target, "--port", "0")) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert "Traceback" not in log
        assert code == 2

    @pytest.mark.parametrize(
        ("source", "error"),
        [
            pytest.param(
                "import os\n\nimport not_installed_anywhere\n",
                "an import inside it failed at {file}:3: "
                "ModuleNotFoundError: No module named 'not_installed_anywhere'",
                id="missing-dependency",
            ),
            pytest.param(
                "x = 1\ndef broken(:\n    pass\n",
                "syntax error at {file}:2: SyntaxError: ",
                id="syntax-error",
            ),
            pytest.param(
                "def configure():\n    raise RuntimeError('no config')\n\n\nconfigure()\n",
                "exception at {file}:2: RuntimeError: no config",
                id="exception",
            ),
            pytest.param(
                "import helper\n",
                "exception at {helper}:2: KeyError: 'HOME_OF_APP'",
                id="in-a-module-it-imports",
            ),
        ],
    )
    async def test_a_module_that_fails_to_import(self, tmp_path: Path, source: str, error: str) -> None:
        (tmp_path / "broken_app.py").write_text(source)
        (tmp_path / "helper.py").write_text("import os\nos.environ['HOME_OF_APP']\n")
        async with run_cli(serve_command("broken_app:app", "--port", "0"), cwd=tmp_path) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert code == 2
        header = error.format(file=tmp_path / "broken_app.py", helper=tmp_path / "helper.py")
        assert f"ERROR grestws: cannot import broken_app: {header}" in log
        assert "Traceback" not in log
        assert "<frozen importlib" not in log
        assert "cli.py" not in log
        assert "listening on" not in log
