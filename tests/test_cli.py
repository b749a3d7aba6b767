"""``grestws serve`` as a real subprocess: it serves, answers, and stops cleanly on a signal;
``--broker`` and the broker URLs it takes (:func:`grestws.broker.url.broker_from_url`).

``--workers`` and several processes linked by Redis are in tests/test_cluster.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

import grestws
from examples.chat.contract import ChatApi, SendMessageRequest
from grestws.broker import LocalBroker
from grestws.broker.redis import RedisBroker
from grestws.broker.url import broker_from_url, redact
from tests.cli_apps import HangApi
from tests.cluster_app import PROBE, ClusterApi, Me
from tests.redis_server import RedisServer
from tests.scrape import eventually, value
from tests.support import ChatInbox

ROOT = Path(__file__).resolve().parents[1]
START_WAIT = 15.0
WAIT = 5.0
LISTENING = re.compile(r"listening on (ws://127\.0\.0\.1:(\d+)/ws/chat)$")
ACCESS = re.compile(r"grestws\.access: conn=\w{32} user=(\w+) in ChatApi\.sendMessage request id=\d+ OK ")
METRICS = re.compile(r"grestws: metrics on (http://127\.0\.0\.1:\d+/metrics)$")
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


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without ``GRESTWS_BROKER`` (which ``--broker`` defaults
    to), with ``extra``."""
    env = {name: value for name, value in os.environ.items() if name != "GRESTWS_BROKER"}
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def run_cli(
    command: Sequence[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> AsyncIterator[Served]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=environment() if env is None else env,
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


async def probe(url: str) -> Me:
    """Ask the tests.cluster_app process at ``url`` who serves a connection of the user
    ``probe``, which joins no room (so the process's presence does not change)."""
    schema = ClusterApi.use(grestws.BearerAuth(f"secret-{PROBE}"))
    async with grestws.connect(url, schema) as client:
        return await asyncio.wait_for(client.outgoing.whoami(), WAIT)


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

    async def test_metrics_port(self) -> None:
        command = serve_command("examples.chat.server:app", "--port", "0", "--metrics-port", "0")
        async with run_cli(command) as served, httpx.AsyncClient(timeout=WAIT) as http:
            metrics = (await served.read_until(METRICS))[1]
            url = (await served.read_until(LISTENING))[1].removesuffix("/ws/chat")
            await chat_round_trip(url)
            labels = {"contract": "ChatApi", "path": "/ws/chat"}
            samples = await eventually(http, metrics, "grestws_connections_active", 0, **labels)
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0
        send = {"path": "/ws/chat", "method": "ChatApi.sendMessage", "kind": "request"}
        assert value(samples, "grestws_requests_total", **send, result="OK") == 1
        assert value(samples, "grestws_request_duration_seconds_count", **send) == 1
        assert value(samples, "grestws_connections_total", **labels, result="accepted") == 1

    async def test_access_log(self) -> None:
        command = serve_command("examples.chat.server:app", "--port", "0", "--access-log")
        async with run_cli(command) as served:
            url = (await served.read_until(LISTENING))[1].removesuffix("/ws/chat")
            await chat_round_trip(url)
            line = await served.read_until(ACCESS)
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0
        assert line[1] == "tester"

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
            url = match[1].removesuffix("/ws/chat")
            client = await asyncio.wait_for(grestws.connect(url, schema, reconnect=False), WAIT)
            closed: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue()
            client.on_close(lambda code, reason: closed.put_nowait((code, reason)))
            served.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(closed.get(), WAIT) == (1012, "Server restarting")
            assert await served.finish() == 0
            await client.close()

    async def test_recovery_option(self) -> None:
        command = serve_command("examples.chat.server:app", "--port", "0", "--recovery", "30")
        async with run_cli(command) as served:
            match = await served.read_until(LISTENING)
            async with ws_connect(match[1]) as ws:
                offer = json.dumps({"authorization": "Bearer secret-tester", "grestws-recovery": "{}"})
                await ws.send(f"h:::{offer}")
                kind, _, accepted = str(await asyncio.wait_for(ws.recv(), WAIT)).partition(":::")
                assert kind == "k"
                recovery = json.loads(accepted)["recovery"]
                assert (recovery["recovered"], recovery["window"]) == (None, 30.0)
                assert recovery["session"]
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0

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
                with pytest.raises(grestws.ServerError, match="Cancelled: the server is shutting down"):
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

    async def test_a_forced_shutdown_ends_even_if_the_server_never_closes(self) -> None:
        async with run_cli(serve_command("tests.cluster_app:stuck_app", "--port", "0")) as served:
            await served.read_until(re.compile("listening on"))
            served.process.send_signal(signal.SIGTERM)
            await served.read_until(re.compile("shutting down"))
            served.process.send_signal(signal.SIGTERM)
            await served.read_until(re.compile("not closed 5 s after the forced shutdown: exiting anyway$"))
            assert await served.finish() == 1
        log = "\n".join(served.lines)
        assert served.lines[-1].endswith("grestws: stopped")
        assert "Traceback" not in log


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
            ("tests.cli_apps:logger", "tests.cli_apps:logger is a Logger, not a grestws.App"),
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


class TestBrokerUrl:
    @pytest.mark.parametrize(
        ("url", "redis_url", "options"),
        [
            (
                "redis://127.0.0.1:6379/0?namespace=x&presence_ttl=5&operation_timeout=1",
                "redis://127.0.0.1:6379/0",
                {"namespace": "x", "presence_ttl": 5.0, "operation_timeout": 1.0},
            ),
            (
                "redis://127.0.0.1:6379/2",
                "redis://127.0.0.1:6379/2",
                {"namespace": "grestws", "presence_ttl": 30.0, "operation_timeout": 2.0},
            ),
            (
                "redis://user:pw@h:6379/0?client_name=web&namespace=chat&health_check_interval=10",
                "redis://user:pw@h:6379/0?client_name=web&health_check_interval=10",
                {"namespace": "chat"},
            ),
            ("rediss://h:6380/1?backoff=0.5,3", "rediss://h:6380/1", {"backoff": (0.5, 3.0)}),
            ("unix:///run/redis.sock?db=2&namespace=q", "unix:///run/redis.sock?db=2", {"namespace": "q"}),
            ("redis://h/0?namespace=a%3Ab", "redis://h/0", {"namespace": "a:b"}),
        ],
    )
    def test_redis_options_come_out_of_the_url(
        self, url: str, redis_url: str, options: dict[str, object]
    ) -> None:
        broker = broker_from_url(url)
        assert isinstance(broker, RedisBroker)
        assert broker.url == redis_url
        for name, expected in options.items():
            assert getattr(broker, name) == expected
        assert broker.channel == f"{broker.namespace}:fanout"

    def test_memory(self) -> None:
        assert isinstance(broker_from_url("memory://"), LocalBroker)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("http://h/0", "unknown broker URL scheme 'http'"),
            ("127.0.0.1:6379", "not a broker URL"),
            ("memory://x", "memory:// takes nothing"),
            ("redis://h/0?bogus=1", "unknown query parameter 'bogus'"),
            ("redis://h/0?presence_ttl=0", "presence_ttl must be a positive number of seconds, got '0'"),
            ("redis://h/0?operation_timeout=soon", "operation_timeout must be a positive number"),
            ("redis://h/0?presence_ttl=inf", "presence_ttl must be a positive number"),
            ("redis://h/0?namespace=", "namespace must not be empty"),
            ("redis://h/0?namespace=a&namespace=b", "namespace is given twice"),
            ("redis://h/0?backoff=3,1", "backoff must be FIRST,LONGEST"),
            ("redis://h/0?backoff=3", "backoff must be FIRST,LONGEST"),
            ("redis://h/0?socket_timeout=1", "socket_timeout is set by the broker"),
            ("redis://h/0?socket_connect_timeout=1", "socket_connect_timeout is set by the broker"),
            ("redis://h/0?db=zero", "bad Redis URL: Invalid value for 'db'"),
            ("redis://h:99999/0", "bad Redis URL"),
            ("unix://", "unix:// needs the socket's path"),
        ],
    )
    def test_bad_urls(self, url: str, message: str) -> None:
        with pytest.raises(ValueError, match=re.escape(message)):
            broker_from_url(url)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("redis://admin:hunter2@h:99999/0", "bad Redis URL"),
            ("redis://admin:hunter2@h/0?bogus=1", "unknown query parameter 'bogus'"),
            ("redis://admin:hunter2@h/0?presence_ttl=x", "presence_ttl must be"),
        ],
    )
    def test_no_password_in_the_message(self, url: str, message: str) -> None:
        with pytest.raises(ValueError, match=re.escape(message)) as raised:
            broker_from_url(url)
        assert "hunter2" not in str(raised.value)

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://admin:hunter2@h:6379/0", "redis://admin:***@h:6379/0"),
            ("redis://:hunter2@h/0?db=1", "redis://:***@h/0?db=1"),
            ("redis://admin@h/0", "redis://admin@h/0"),
            ("redis://h:6379/0", "redis://h:6379/0"),
            ("memory://", "memory://"),
        ],
    )
    def test_redact(self, url: str, shown: str) -> None:
        assert redact(url) == shown

    def test_without_the_redis_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "redis", None)  # as if redis-py were not installed
        monkeypatch.delitem(sys.modules, "grestws.broker.redis")
        with pytest.raises(ImportError, match=re.escape('pip install "grestws[redis]"')):
            broker_from_url("redis://127.0.0.1:6379/0")
        assert isinstance(broker_from_url("memory://"), LocalBroker)


class TestBrokerOption:
    async def test_serves_with_a_redis_broker(self, redis_server: RedisServer) -> None:
        url = f"redis://:hunter2@127.0.0.1:{redis_server.port}/0?namespace=cli&presence_ttl=3"
        async with run_cli(serve_command("tests.cluster_app:app", "--port", "0", "--broker", url)) as served:
            match = await served.read_until(re.compile(r"listening on (ws://\S+)$"))
            me = await probe(match[1])
            assert me.linked  # a RedisBroker, linked
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0
        log = "\n".join(served.lines)
        assert f"INFO grestws: broker: redis://:***@127.0.0.1:{redis_server.port}/0?namespace=cli" in log
        assert "hunter2" not in log
        assert "Traceback" not in log

    async def test_from_the_environment(self, redis_server: RedisServer) -> None:
        env = environment(GRESTWS_BROKER=f"{redis_server.url}?namespace=env")
        async with run_cli(serve_command("tests.cluster_app:app", "--port", "0"), env=env) as served:
            match = await served.read_until(re.compile(r"listening on (ws://\S+)$"))
            assert (await probe(match[1])).linked
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0
        assert f"broker: {redis_server.url}?namespace=env" in "\n".join(served.lines)

    @pytest.mark.parametrize(
        ("args", "env"),
        [(["--broker", ""], {"GRESTWS_BROKER": "bogus"}), ([], {"GRESTWS_BROKER": ""})],
        ids=["empty-option-over-the-environment", "empty-environment"],
    )
    async def test_an_empty_url_is_none(self, args: list[str], env: dict[str, str]) -> None:
        command = serve_command("examples.chat.server:app", "--port", "0", *args)
        async with run_cli(command, env=environment(**env)) as served:
            match = await served.read_until(LISTENING)
            await chat_round_trip(match[1])
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0
        assert "broker:" not in "\n".join(served.lines)

    @pytest.mark.parametrize(
        ("args", "env", "message"),
        [
            (["--broker", "http://127.0.0.1/"], {}, "--broker: unknown broker URL scheme 'http'"),
            (
                ["--broker", "redis://u:hunter2@127.0.0.1:6379/0?presence_tll=5"],
                {},
                "--broker: unknown query parameter 'presence_tll'",
            ),
            ([], {"GRESTWS_BROKER": "redis://h/0?presence_ttl=-1"}, "$GRESTWS_BROKER: presence_ttl must be"),
            (
                ["--workers", "0"],
                {},
                "argument --workers: expected a number of processes, 1 or more, got '0'",
            ),
            (["--workers", "two"], {}, "argument --workers: expected a number of processes"),
            (["--workers", "2", "--port", "0"], {}, "--workers: the workers share one port"),
        ],
    )
    async def test_usage_errors(self, args: list[str], env: dict[str, str], message: str) -> None:
        command = serve_command("examples.chat.server:app", "--port", "8765", *args)
        async with run_cli(command, env=environment(**env)) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert code == 2
        errors = [line for line in served.lines if "error:" in line]
        assert len(errors) == 1, log
        assert errors[0].partition(": error: ")[2].startswith(message), log
        assert "hunter2" not in log
        assert "Traceback" not in log
        assert "listening on" not in log

    async def test_redis_extra_not_installed(self) -> None:
        script = (
            "import sys; sys.modules['redis'] = None; from grestws.cli import main; "
            "sys.exit(main(['serve', 'examples.chat.server:app', '--port', '0', "
            "'--broker', 'redis://127.0.0.1:6379/0']))"
        )
        async with run_cli([sys.executable, "-W", "error", "-c", script]) as served:
            code = await served.finish()
        log = "\n".join(served.lines)
        assert code == 2
        assert (
            'grestws: error: --broker: the Redis broker needs redis-py: pip install "grestws[redis]"' in log
        )
        assert "Traceback" not in log
