"""The sans-I/O core loads no I/O library: proven in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("asyncio", "websockets")

PROBE = f"""
import json, sys
import grestws.protocol
import grestws.contract
loaded = sorted(
    name for name in sys.modules if name.partition(".")[0] in {FORBIDDEN!r} or name == "grestws.session"
)
print(json.dumps(loaded))
"""


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_protocol_and_contract_import_no_io_library() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-c", PROBE], capture_output=True, text=True, timeout=25, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_the_probe_would_see_asyncio() -> None:
    probe = PROBE.replace("import grestws.contract", "import grestws.contract, grestws.session")
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=25, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "asyncio" in json.loads(done.stdout)
