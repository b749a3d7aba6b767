"""The tools that tests outside Python need, installed on first use: the npm packages of a
test folder (``npm ci``) and Debian's Chromium (``apt-get``, as root).

A missing ``node``/``npm``, or a machine without ``apt-get`` where Chromium is missing,
skips the tests that need them with the reason; a failed install fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ("browser_driver", "chromium", "drive", "node", "npm_ci")

INSTALL_TIMEOUT = 900
"""Seconds an install may take."""

LOCKS = Path(os.environ.get("TMPDIR", "/tmp"))


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Hold an exclusive lock across processes (concurrent test runs install once)."""
    with (LOCKS / f"grestws-{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def node() -> str:
    """The ``node`` on PATH; skips the test without one."""
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not on PATH")
    return found


def npm_ci(folder: Path) -> Path:
    """``npm ci`` in ``folder`` unless its node_modules is as new as its lock file;
    returns ``folder / "node_modules"``."""
    node()
    npm = shutil.which("npm")
    assert npm is not None
    modules = folder / "node_modules"
    installed = modules / ".package-lock.json"  # npm writes it on every install
    with _locked(f"npm-{folder.name}"):
        if installed.exists() and installed.stat().st_mtime >= (folder / "package-lock.json").stat().st_mtime:
            return modules
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    assert done.returncode == 0, f"npm ci failed in {folder}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return modules


def _installed_chromium() -> str | None:
    given = os.environ.get("GRESTWS_CHROMIUM")
    if given:
        return given
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium() -> str:
    """Debian's Chromium (``$GRESTWS_CHROMIUM``, else ``chromium`` on PATH), installed with
    ``apt-get`` when missing and this process may: root on a machine with apt-get. Skips
    the test where it can be neither found nor installed."""
    found = _installed_chromium()
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("chromium is not installed, and apt-get cannot install it here (set GRESTWS_CHROMIUM)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _locked("apt"):
        if (found := _installed_chromium()) is not None:
            return found
        for args in (["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", "chromium"]):
            done = subprocess.run(
                [apt, *args], capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env, check=False
            )
            output = done.stdout[-4000:] + done.stderr[-4000:]
            assert done.returncode == 0, f"apt-get {' '.join(args)} failed:\n{output}"
    found = _installed_chromium()
    assert found is not None, "apt-get installed chromium, but it is not on PATH"
    return found


BROWSER = Path(__file__).resolve().parent / "browser"
"""The npm folder of the Chromium drivers (playwright-core)."""


def browser_driver(script: str) -> list[str]:
    """How to run ``tests/browser/SCRIPT``: node, the script, then Chromium's path (its
    first argument); installs playwright-core and Chromium first when missing."""
    assert (npm_ci(BROWSER) / "playwright-core").is_dir()
    return [node(), str(BROWSER / script), chromium()]


async def drive(driver: list[str], *args: str, timeout: float = 150.0) -> list[str]:
    """Run a driver of :func:`browser_driver` with ``args``; its output lines, after
    checking that it passed (the lines are the failure's message)."""
    process = await asyncio.create_subprocess_exec(
        *driver, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    lines = output.decode(errors="replace").splitlines()
    assert process.returncode == 0, "\n".join(lines)
    return lines
