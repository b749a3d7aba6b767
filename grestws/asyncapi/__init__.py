"""An AsyncAPI 3.0 document of an App: its sockets, calls, payloads, errors and permissions.

:func:`asyncapi_document` describes every schema an :class:`~grestws.app.App` serves, and
:func:`dumps` writes it as JSON, the same text every time; ``grestws asyncapi MODULE:ATTR``
prints it; :func:`asyncapi_app` is an ASGI app that serves it, as JSON and as a page the
AsyncAPI web component renders::

    document = asyncapi_document(app, title="Chat", servers={"local": "ws://127.0.0.1:8765"})
    Path("asyncapi.json").write_text(dumps(document))

The document describes the **server**: an operation whose ``action`` is ``receive`` is a
call a client makes, one whose action is ``send`` a call the server makes on a client. A
request's ``reply`` holds the two messages of the ``s`` frame that answers it: the success
envelope, and the error envelopes of the errors the method may answer. What AsyncAPI has
no field for is in ``x-grestws-*`` extensions: each message's frame type and path, each
operation's permission, declared errors, rate, deadline and topic (``docs/asyncapi.md``).

Modules: :mod:`~grestws.asyncapi.document` builds the document,
:mod:`~grestws.asyncapi.schemas` the JSON Schemas in it (payload types through msgspec,
envelopes, frames), :mod:`~grestws.asyncapi.asgi` serves it.
"""

from __future__ import annotations

from grestws.asyncapi.asgi import WEB_COMPONENT_CSS, WEB_COMPONENT_JS, AsyncApiApp, asyncapi_app
from grestws.asyncapi.document import ASYNCAPI_VERSION, PROTOCOL_VERSION, asyncapi_document, dumps

__all__ = (
    "ASYNCAPI_VERSION",
    "PROTOCOL_VERSION",
    "WEB_COMPONENT_CSS",
    "WEB_COMPONENT_JS",
    "AsyncApiApp",
    "asyncapi_app",
    "asyncapi_document",
    "dumps",
)
