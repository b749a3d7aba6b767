"""A TypeScript client generated from the chat contract.

Run from the repository root: ``python docs/examples/typescript.py``. It generates the
client of ``examples.chat.server:app`` into a temporary folder, as
``grestws typescript examples.chat.server:app -o DIR`` does, then prints the names of
the files and the start of the API file. With Node and npm, ``tests/test_typescript.py``
compiles such files with ``tsc --strict`` and runs them against a real server.
"""

from __future__ import annotations

import tempfile

import grestws
from examples.chat.server import app
from grestws.typescript import generate, write


def main() -> None:
    files = generate(app, version=grestws.__version__, source="examples.chat.server:app")
    assert list(files) == ["chat-api.ts", "grestws-runtime.ts"]  # one API file per contract
    with tempfile.TemporaryDirectory() as folder:
        for path in write(files, folder):
            print(f"{path.name}: {len(path.read_text(encoding='utf-8').splitlines())} lines")

    api = files["chat-api.ts"]
    # The wire names, the payload types, a method per call, handlers for the server's calls:
    assert "  sendMessage(req: SendMessageRequest): Promise<SendMessageResponse>;" in api
    assert "  areYouThere?(): boolean | Promise<boolean>;" in api
    assert "export function connectChatApi(" in api
    print()
    print("\n".join(api.splitlines()[:30]))


if __name__ == "__main__":
    main()
