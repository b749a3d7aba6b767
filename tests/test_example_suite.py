"""The chat example's own test suite, written with the testkit, runs in-process: it passes
in an interpreter where opening or binding any network socket fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

NO_NETWORK = """
import socket, sys

def guard(event, args):
    # asyncio's own wake-up pipe is an AF_UNIX socketpair; anything with an address is not
    if event in ("socket.bind", "socket.connect") and args[0].family in (socket.AF_INET, socket.AF_INET6):
        raise PermissionError(f"{event} {args[1]!r}: the example's tests must open no port")

sys.addaudithook(guard)
import pytest
sys.exit(pytest.main(["examples/chat", "-q", "-p", "no:cacheprovider"]))
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_chat_examples_tests_pass_without_any_network_socket() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", NO_NETWORK], cwd=ROOT, capture_output=True, text=True, timeout=100, check=False
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert " passed" in proc.stdout, proc.stdout
    assert "failed" not in proc.stdout, proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_guard_does_stop_a_network_socket() -> None:
    probe = NO_NETWORK.split("import pytest")[0] + (
        "s = socket.socket()\ntry:\n    s.bind(('127.0.0.1', 0))\nexcept PermissionError:\n    sys.exit(7)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 7, proc.stderr
