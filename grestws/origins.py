"""Which browser origins may open a socket, against cross-site WebSocket hijacking.

Browsers apply no same-origin policy to WebSockets: a page on ``https://evil.example`` may
open ``wss://chat.example.com``, and the browser sends ``chat.example.com``'s cookies with
the upgrade request. A server that authenticates sockets by cookie would then serve the
attacker's page as the victim (*cross-site WebSocket hijacking*, CSWSH). The one thing a
page cannot forge is the ``Origin`` header the browser adds, so the server checks it.

:class:`OriginPolicy` answers two questions about an upgrade request, from its ``Origin``
and ``Host`` headers: may the upgrade go on at all (:meth:`~OriginPolicy.allows`), and may
its cookies authenticate it (:meth:`~OriginPolicy.trusts_cookies`). :func:`same_origin`
compares an ``Origin`` with a ``Host``.

Nothing here does I/O. Every function and method is pure and an :class:`OriginPolicy`
never changes after construction, so all are safe to call from any thread or task.
Malformed header values (garbage, more than 1 KB) never raise: they count as foreign.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ("OriginPolicy", "same_origin")

_MAX_LENGTH = 1024
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_IPV6_CHARS = frozenset("0123456789abcdef:.")
_WILDCARD_HINT = "a wildcard must be the whole first label of the host, as in 'https://*.example.com'"


class _Origin(NamedTuple):
    scheme: str  # lower case
    host: str  # lower case; IPv6 literals compressed and in brackets
    port: int | None  # the scheme's default port when none is given; None if it has none


def _clean(value: str) -> str:
    """``value`` without surrounding blanks; ValueError if too long or not printable ASCII."""
    if len(value) > _MAX_LENGTH:
        raise ValueError(f"longer than {_MAX_LENGTH} characters")
    value = value.strip(" \t")
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise ValueError("contains blanks, control or non-ASCII characters")
    return value


def _host(text: str) -> str:
    """A host name or bracketed IPv6 literal, normalised; ValueError if malformed."""
    text = text.lower()
    if text.startswith("["):
        inner = text.removeprefix("[").removesuffix("]")
        if not (text.endswith("]") and inner and set(inner) <= _IPV6_CHARS):
            raise ValueError(f"{text!r} is not an IPv6 address in brackets")
        try:
            return f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv6 address in brackets") from None
    if not text:
        raise ValueError("has no host")
    if not set(text) <= _NAME_CHARS:
        raise ValueError(f"host {text!r} has characters a host name cannot have")
    if "" in text.removesuffix(".").split("."):  # one trailing dot (a rooted name) is fine
        raise ValueError(f"host {text!r} has an empty label")
    return text


def _host_port(netloc: str) -> tuple[str, int | None]:
    """``host[:port]`` (as in a Host header) split and normalised; ValueError if malformed."""
    if "@" in netloc:
        raise ValueError("has user info")
    end = netloc.find("]") + 1 if netloc.startswith("[") else 0
    host, colon, port = netloc[end:].partition(":")
    host = netloc[:end] + host
    if not colon or not port:  # "host:" means the default port (RFC 3986)
        return _host(host), None
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        raise ValueError(f"port {port!r} is not a number from 0 to 65535")
    return _host(host), int(port)


def _parse(value: str) -> _Origin:
    """An ``Origin`` header value or allowlist entry parsed; ValueError (the reason) if malformed."""
    value = _clean(value)
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"cannot be parsed ({exc})") from None
    if not parts.scheme or not value[len(parts.scheme) :].startswith("://"):
        raise ValueError("needs a scheme, as in 'https://example.com'")
    if parts.path:
        raise ValueError("has a path (an origin has none, not even a trailing '/')")
    if parts.query or parts.fragment or len(value) != len(parts.scheme) + 3 + len(parts.netloc):
        raise ValueError("has a query or fragment (an origin is only scheme://host[:port])")
    host, port = _host_port(parts.netloc)
    return _Origin(parts.scheme, host, _DEFAULT_PORTS.get(parts.scheme) if port is None else port)


def _try_parse(value: str) -> _Origin | None:
    try:
        return _parse(value)
    except ValueError:
        return None


def _is_null(value: str) -> bool:
    return len(value) <= _MAX_LENGTH and value.strip(" \t").lower() == "null"


def _same(origin: _Origin, host: str) -> bool:
    default = _DEFAULT_PORTS.get(origin.scheme)
    if default is None:  # not a web scheme: no Host can name it
        return False
    try:
        name, port = _host_port(_clean(host))
    except ValueError:
        return False
    return (name, default if port is None else port) == (origin.host, origin.port)


def _parse_wildcard(entry: str) -> _Origin:
    """A wildcard entry, ``https://*.example.com``, parsed: ``host`` is the domain after
    ``*.``; ValueError (the reason) if invalid."""
    scheme, sep, rest = entry.partition("://")
    if not sep:
        raise ValueError("needs a scheme, as in 'https://*.example.com'")
    if not rest.startswith("*.") or rest.count("*") != 1:
        raise ValueError(_WILDCARD_HINT)
    origin = _parse(f"{scheme}://{rest[2:]}")
    if origin.host.startswith("["):
        raise ValueError(_WILDCARD_HINT)
    return origin


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (an ``Origin`` header, ``"https://chat.example.com"``) names the host
    and port in ``host`` (a ``Host`` header, ``"chat.example.com"``, ``"[::1]:8765"``).

    A Host header has no scheme, so its port defaults by the origin's: 80 for ``http`` and
    ``ws``, 443 for ``https`` and ``wss`` (``https://x.com`` matches ``x.com`` and
    ``x.com:443``). Case does not matter; IPv6 literals compare by address. Origins of other
    schemes, ``"null"`` and malformed values give False; this never raises.

    As the request's own scheme is unknown here, a Host without a port is read by the
    origin's scheme: a page on ``http://x.com`` opening ``wss://x.com`` (Host ``x.com``)
    counts as same-origin.
    """
    parsed = _try_parse(origin)
    return parsed is not None and _same(parsed, host)


class OriginPolicy:
    """Which browser origins may open sockets, and whose cookies are trusted.

    ``allowed`` lists the origins that may connect besides the server's own:

    * exact origins, ``"https://app.example.com"``, ``"http://localhost:3000"``;
    * wildcard subdomains, ``"https://*.example.com"``: any subdomain, at any depth, with
      that scheme and port, but not ``https://example.com`` itself;
    * ``"null"``, the origin of sandboxed iframes and ``file://`` pages;
    * ``"*"``, any origin (including ``"null"``).

    Scheme and host compare case-insensitively, and a default port equals none
    (``https://x.com`` is ``https://x.com:443``). An invalid entry raises ValueError. An empty
    list allows only same-origin requests.

    With ``allowed=None`` (no allowlist) any origin may connect, but only same-origin requests
    have their cookies trusted: sockets that authenticate with a token in the handshake frame
    are safe from any page, since a foreign page does not have the token.

    ``"*"`` never makes cookies trusted: as CORS refuses credentials with a ``*`` origin, only
    the exact and wildcard entries (and the server's own origin) may authenticate by cookie.

    A request without an ``Origin`` header is not from a browser, and CSWSH is a browser
    attack: it is allowed and its cookies trusted. A malformed ``Origin`` is never trusted,
    and is refused whenever there is an allowlist.

    Instances are immutable; :meth:`allows` and :meth:`trusts_cookies` are pure and safe to
    call from any thread or task.
    """

    __slots__ = ("_allowed", "_any", "_exact", "_null", "_wildcards")

    def __init__(self, allowed: Sequence[str] | None = None) -> None:
        if isinstance(allowed, str):
            raise TypeError("allowed must be a sequence of origins, not one string")
        self._allowed = None if allowed is None else tuple(allowed)
        self._any = False
        self._null = False
        exact: set[_Origin] = set()
        wildcards: dict[tuple[str, int | None], list[str]] = {}
        for entry in self._allowed or ():
            try:
                text = _clean(entry).lower()
                if text == "*":
                    self._any = True
                elif text == "null":
                    self._null = True
                elif "*" in text:
                    origin = _parse_wildcard(text)
                    wildcards.setdefault((origin.scheme, origin.port), []).append("." + origin.host)
                else:
                    exact.add(_parse(text))
            except ValueError as exc:
                raise ValueError(f"invalid allowed origin {entry!r}: {exc}") from None
        self._exact = frozenset(exact)
        self._wildcards = {key: tuple(suffixes) for key, suffixes in wildcards.items()}

    @property
    def allowed(self) -> tuple[str, ...] | None:
        """The allowlist entries as given, or None when there is no allowlist."""
        return self._allowed

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether an upgrade request with these ``Origin`` and ``Host`` headers may go on.

        True without an ``Origin`` header or without an allowlist; otherwise True if the
        origin is listed (``"*"`` lists every well-formed origin and ``"null"``) or is the
        server's own (:func:`same_origin` with ``host``).
        """
        if origin is None or self._allowed is None:
            return True
        return self._check(origin, host, cookies=False)

    def trusts_cookies(self, origin: str | None, host: str | None) -> bool:
        """Whether the cookies of an upgrade request with these headers may authenticate it.

        True without an ``Origin`` header, for the server's own origin, and for origins
        matching an exact or wildcard entry (or ``"null"`` when listed). ``"*"`` does not
        count, and without an allowlist only the server's own origin is trusted.
        """
        if origin is None:
            return True
        return self._check(origin, host, cookies=True)

    def _check(self, origin: str, host: str | None, *, cookies: bool) -> bool:
        if _is_null(origin):
            return self._null or (self._any and not cookies)
        parsed = _try_parse(origin)
        if parsed is None:
            return False
        if self._any and not cookies:
            return True
        if parsed in self._exact:
            return True
        if parsed.host.endswith(self._wildcards.get((parsed.scheme, parsed.port), ())):
            return True
        return host is not None and _same(parsed, host)

    def __repr__(self) -> str:
        return f"OriginPolicy({self._allowed!r})"
