"""Imports run one way: protocol <- contract <- session <- transports, server, client.

Each module is imported in a fresh interpreter and may pull in no grestws module of a
higher layer; the client pulls in nothing of the server. The imports written in the
source, those under ``TYPE_CHECKING`` included, form no circle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "grestws"

LAYERS: dict[str, int] = {
    "grestws.exceptions": 0,
    "grestws.protocol": 1,
    "grestws.protocol.frames": 1,
    "grestws.protocol.codec": 1,
    "grestws.protocol.depth": 1,
    "grestws.rates": 1,
    "grestws.deadlines": 1,
    "grestws.inline": 1,
    "grestws.liveness": 1,
    "grestws.incidents": 1,
    "grestws.origins": 1,
    "grestws._util": 1,
    "grestws.transports": 1,
    "grestws.transports.lingering": 1,
    "grestws.broker": 1,
    "grestws.broker.envelopes": 1,
    "grestws.recovery": 1,
    "grestws.recovery.memory": 1,
    "grestws.protocol.positions": 1,
    "grestws.reconnect": 1,
    "grestws.broker.redis_history": 2,
    "grestws.broker.redis": 2,
    "grestws.broker.url": 3,
    "grestws.context": 2,
    "grestws.permissions": 2,
    "grestws.result": 2,
    "grestws.middleware": 3,
    "grestws.auth": 3,
    "grestws.contract": 4,
    "grestws.contract.methods": 4,
    "grestws.contract.contract": 4,
    "grestws.contract.envelopes": 4,
    "grestws.limits": 4,
    "grestws.interceptors": 4,
    "grestws.access_log": 5,
    "grestws.session": 5,
    "grestws.typescript": 5,
    "grestws.typescript.api": 5,
    "grestws.typescript.types": 5,
    "grestws.handshake": 6,
    "grestws.connections": 6,
    "grestws.transports.memory": 6,
    "grestws.transports.websockets": 6,
    "grestws.transports.picows": 6,
    "grestws.transports.picows_server": 6,
    "grestws.transports.asgi": 6,
    "grestws.link": 6,
    "grestws.dialing": 7,
    "grestws.recovery.sessions": 6,
    "grestws.rooms": 7,
    "grestws.topics": 7,
    "grestws.app": 7,
    "grestws.asgi_auth": 7,
    "grestws.server": 8,
    "grestws.broadcast": 8,
    "grestws.client": 8,
    "grestws.prometheus": 8,
    "grestws.call_metrics": 7,
    "grestws.tracing": 8,
    "grestws.asyncapi": 8,
    "grestws.asyncapi.document": 8,
    "grestws.asyncapi.schemas": 8,
    "grestws.asyncapi.asgi": 8,
    "grestws.pool": 9,
    "grestws.testkit": 9,
    "grestws.testkit.matching": 9,
    "grestws.testkit.wire": 9,
    "grestws.testkit.mocks": 9,
    "grestws.testkit.inprocess": 9,
    "grestws.testkit.client": 9,
    "grestws.testkit.expect": 9,
    "grestws.testkit.plugin": 9,
    "grestws.workers": 9,
    "grestws.describe": 9,
    "grestws.cli": 9,
    "grestws.__main__": 10,
}
"""Every module of the package (the facade ``grestws`` aside) and its layer."""

SERVER_SIDE = frozenset(
    {
        "grestws.app",
        "grestws.server",
        "grestws.broadcast",
        "grestws.connections",
        "grestws.rooms",
        "grestws.topics",
        "grestws.broker",
        "grestws.broker.redis",
        "grestws.broker.redis_history",
        "grestws.broker.url",
        "grestws.broker.envelopes",
        "grestws.recovery",
        "grestws.recovery.memory",
        "grestws.recovery.sessions",
        "grestws.origins",
        "grestws.transports.asgi",
        "grestws.asgi_auth",
        "grestws.prometheus",
        "grestws.call_metrics",
        "grestws.asyncapi",
        "grestws.asyncapi.document",
        "grestws.asyncapi.schemas",
        "grestws.asyncapi.asgi",
        "grestws.cli",
        "grestws.describe",
        "grestws.workers",
    }
)

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(name for name in sys.modules if name.startswith("grestws."))))
"""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _loaded_by(module: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, module], capture_output=True, text=True, timeout=25, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def test_every_module_has_a_layer() -> None:
    assert set(_sources()) - {"grestws"} == set(LAYERS)


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("module", sorted(LAYERS))
def test_a_module_pulls_in_nothing_above_it(module: str) -> None:
    above = {name: LAYERS[name] for name in _loaded_by(module) if LAYERS.get(name, -1) > LAYERS[module]}
    assert above == {}, f"{module} (layer {LAYERS[module]}) pulls in higher layers"


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_the_client_pulls_in_nothing_of_the_server() -> None:
    assert _loaded_by("grestws.client") & SERVER_SIDE == set()


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The grestws modules ``module`` names in its imports, under TYPE_CHECKING too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return {name for name in found if name in known and name not in (module, "grestws")}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path of imports that comes back to where it started, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in done:
            return None
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            if (circle := visit(imported)) is not None:
                return circle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if (circle := visit(module)) is not None:
            return circle
    return None


def test_no_import_circle_even_under_type_checking() -> None:
    sources = _sources()
    known = set(sources)
    graph = {module: _imports(module, path, known) for module, path in sources.items() if module != "grestws"}
    assert find_circle(graph) is None


def test_the_circle_check_sees_a_circle() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]
    assert find_circle({"a": {"b"}, "b": set()}) is None
