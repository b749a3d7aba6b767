"""The chat example's web page (examples/chat/web).

Without Node: its generated client is what ``grestws typescript examples.chat.server:app``
writes today, and ``uvicorn examples.chat.asgi:app`` serves it without a token. With Node
(tests/typescript's compiler, tests/browser's playwright-core, both installed on first
use) and Debian's Chromium (installed with apt-get when missing; see tests/tooling.py):
its compiled scripts are what its TypeScript compiles to, and two pages in headless
Chromium chat through the Python server, served by uvicorn beside the page, or by
``grestws serve`` with the page from another origin.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

import grestws
from examples.chat.server import app as chat_app
from grestws.typescript import generate
from tests.processes import grestws_serve, static_files, uvicorn_process
from tests.tooling import browser_driver, drive, node, npm_ci

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "examples" / "chat" / "web"
TYPESCRIPT = ROOT / "tests" / "typescript"
PAGE_CHECKS = [
    "ok two pages log in with their tokens",
    "ok messages go both ways",
    "ok typing shows on the other page",
    "ok who is here: each page answers areYouThere",
    "ok a validation error is shown",
    "ok a bad token is refused",
    "ok leaving closes the connection",
    "ok no errors on the pages",
]


def files_in(folder: Path, pattern: str) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.glob(pattern))}


def test_the_generated_client_is_up_to_date() -> None:
    expected = generate(chat_app, version=grestws.__version__, source="examples.chat.server:app")
    assert files_in(WEB / "src" / "api", "*.ts") == {
        name: text.encode() for name, text in expected.items()
    }, "run: grestws typescript examples.chat.server:app -o examples/chat/web/src/api"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_compiled_scripts_are_up_to_date(tmp_path: Path) -> None:
    tsc = npm_ci(TYPESCRIPT) / "typescript" / "bin" / "tsc"
    done = subprocess.run(
        [node(), str(tsc), "-p", str(WEB), "--outDir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "")
    assert files_in(WEB / "js", "**/*.js") == files_in(tmp_path, "**/*.js"), (
        "run: npx tsc -p examples/chat/web (TypeScript 5.9)"
    )


@pytest.mark.slow
async def test_uvicorn_serves_the_page_without_a_token() -> None:
    async with (
        uvicorn_process("examples.chat.asgi:app") as served,
        httpx.AsyncClient(base_url=served.http_url, timeout=10) as http,
    ):
        page = await http.get("/chat/")
        script = await http.get("/chat/js/app.js")
        bare = await http.get("/chat", follow_redirects=True)
        guarded = await http.get("/api/messages")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js"></script>' in page.text
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert bare.text == page.text
    assert guarded.status_code == 401


@pytest.fixture(scope="session")
def page_driver() -> list[str]:
    """How to run tests/browser/chat-page.mjs: node, the script, Chromium."""
    return browser_driver("chat-page.mjs")


async def run_pages(driver: list[str], page_url: str, shots: Path) -> list[str]:
    """chat-page.mjs against ``page_url``; its lines, after checking it passed."""
    lines = await drive(driver, page_url, str(shots))
    assert (shots / "ann.png").stat().st_size > 0
    assert (shots / "bob.png").stat().st_size > 0
    return lines


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_two_pages_chat_through_uvicorn(page_driver: list[str], tmp_path: Path) -> None:
    async with uvicorn_process("examples.chat.asgi:app") as served:
        lines = await run_pages(page_driver, f"{served.http_url}/chat/", tmp_path)
    assert lines == PAGE_CHECKS


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_two_pages_chat_through_grestws_serve_from_another_origin(
    page_driver: list[str], tmp_path: Path
) -> None:
    async with grestws_serve("examples.chat.server:app") as ws_url:
        with static_files(WEB) as page_url:
            lines = await run_pages(page_driver, f"{page_url}/?server={ws_url}", tmp_path)
    assert lines == PAGE_CHECKS
