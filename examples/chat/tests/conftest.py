"""The chat example's tests talk to its App in-process: no port, no server process."""

from __future__ import annotations

import pytest

import grestws
from examples.chat import server


@pytest.fixture
def grestws_app() -> grestws.App:
    """The App that ``grestws_client`` connects to."""
    return server.app
