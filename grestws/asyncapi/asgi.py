"""An ASGI app that serves the AsyncAPI document of an App: as JSON, and as a page that
the AsyncAPI web component renders.

It is a plain ASGI callable (no framework needed), meant to be mounted beside the App::

    Starlette(routes=[Mount("/rt", app=sockets), Mount("/docs", app=asyncapi_app(sockets))])
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from grestws.app import App
from grestws.asyncapi.document import asyncapi_document, dumps, server_object
from grestws.transports.asgi import Receive, Scope, Send, route_path

__all__ = ("WEB_COMPONENT_CSS", "WEB_COMPONENT_JS", "AsyncApiApp", "asyncapi_app")

WEB_COMPONENT_JS = "https://unpkg.com/@asyncapi/web-component@2.6.5/lib/asyncapi-web-component.js"
"""The AsyncAPI web component (``@asyncapi/web-component``), pinned."""
WEB_COMPONENT_CSS = "https://unpkg.com/@asyncapi/react-component@2.6.5/styles/default.min.css"
"""The styles of the web component's version."""

_TEXT = "text/plain; charset=utf-8"


class AsyncApiApp:
    """An ASGI app serving the AsyncAPI document of an App (made by :func:`asyncapi_app`).

    The document is built on the first request, once: add every route to the App before
    serving either. Concurrency: any number of requests at once.
    """

    def __init__(
        self,
        app: App,
        *,
        path_json: str = "/asyncapi.json",
        path_html: str = "/asyncapi",
        title: str | None = None,
        version: str = "1.0.0",
        servers: Mapping[str, str] | None = None,
        script_url: str = WEB_COMPONENT_JS,
        css_url: str = WEB_COMPONENT_CSS,
    ) -> None:
        for path in (path_json, path_html):
            if not path.startswith("/"):
                raise ValueError(f"a path starts with '/': {path!r}")
        if path_json == path_html:
            raise ValueError(f"the JSON and the page need paths of their own, not both {path_json!r}")
        for name, url in (servers or {}).items():
            server_object(name, url)  # a bad server fails here, not on the first request
        self.app = app
        self.path_json = path_json
        self.path_html = path_html
        self.script_url = script_url
        self.css_url = css_url
        self._options: dict[str, Any] = {"title": title, "version": version, "servers": servers}
        self._json: bytes | None = None
        self._title = ""

    def document_json(self) -> bytes:
        """The document as :func:`~grestws.asyncapi.dumps` writes it, in UTF-8 (built once)."""
        if self._json is None:
            document = asyncapi_document(self.app, **self._options)
            self._title = document["info"]["title"]
            self._json = dumps(document).encode()
        return self._json

    def page(self, json_url: str) -> bytes:
        """The HTML page: the web component renders the document the page embeds, and the
        document stays readable on the page when the component cannot load (no network)."""
        document = self.document_json().decode()
        return _PAGE.format(
            title=html.escape(self._title),
            script=html.escape(self.script_url),
            css=html.escape(self.css_url),
            json_url=html.escape(json_url),
            document=html.escape(document, quote=False),
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, send)
        elif kind == "websocket":  # no sockets here: refused before the accept
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, send: Send) -> None:
        path = route_path(scope)
        head = scope["method"] == "HEAD"
        if path not in (self.path_json, self.path_html):
            await _respond(send, 404, b"Not Found\n", _TEXT, head)
        elif scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n", _TEXT, head, [(b"allow", b"GET, HEAD")])
        elif path == self.path_json:
            await _respond(send, 200, self.document_json(), "application/json", head)
        else:
            json_url = scope.get("root_path", "").rstrip("/") + self.path_json
            await _respond(send, 200, self.page(json_url), "text/html; charset=utf-8", head)


def asyncapi_app(
    app: App,
    *,
    path_json: str = "/asyncapi.json",
    path_html: str = "/asyncapi",
    title: str | None = None,
    version: str = "1.0.0",
    servers: Mapping[str, str] | None = None,
    script_url: str = WEB_COMPONENT_JS,
    css_url: str = WEB_COMPONENT_CSS,
) -> AsyncApiApp:
    """An ASGI app that serves the AsyncAPI document of ``app``.

    ``GET path_json`` answers the JSON (``application/json``), ``GET path_html`` a page
    that renders it with the AsyncAPI web component (``script_url`` and ``css_url``, from
    unpkg by default: point them at your own copies to serve the page offline) and that
    embeds the JSON, shown as it is when the component cannot load. Paths are relative to
    the ``root_path`` of a mount; others answer 404, methods other than GET and HEAD 405.
    ``title``, ``version`` and ``servers`` are those of
    :func:`~grestws.asyncapi.asyncapi_document`.

    Raises:
        ValueError: a path without a leading ``/``, one path for both, or a server that
            :func:`~grestws.asyncapi.asyncapi_document` refuses.
    """
    return AsyncApiApp(
        app,
        path_json=path_json,
        path_html=path_html,
        title=title,
        version=version,
        servers=servers,
        script_url=script_url,
        css_url=css_url,
    )


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    head: bool,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", b"%d" % len(body)),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<script src="{script}" defer></script>
</head>
<body>
<asyncapi-component id="asyncapi" cssImportPath="{css}"
  config='{{"show": {{"sidebar": true}}}}'></asyncapi-component>
<details id="asyncapi-source" open>
<summary>The AsyncAPI document, also at <a href="{json_url}">{json_url}</a></summary>
<pre id="asyncapi-document">{document}</pre>
</details>
<script>
document.getElementById("asyncapi").setAttribute(
  "schema", document.getElementById("asyncapi-document").textContent);
customElements.whenDefined("asyncapi-component").then(function () {{
  document.getElementById("asyncapi-source").open = false;
}});
</script>
</body>
</html>
"""
