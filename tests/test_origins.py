"""OriginPolicy and same_origin: the Origin checks against cross-site WebSocket hijacking."""

from __future__ import annotations

import time

import pytest

from grestws.origins import OriginPolicy, same_origin

LONG = "https://" + "a" * 1100 + ".com"
HUGE = "https://" + "a." * 5_000_000 + "com"

# Malformed Origin header values: never same-origin, never listed, never trusted.
MALFORMED = [
    "",
    "garbage",
    "example.com",
    "localhost:3000",
    "https:example.com",
    "//example.com",
    "https://",
    "https:///example.com",
    "https://example.com/",
    "https://example.com/path",
    "https://example.com?",
    "https://example.com?q=1",
    "https://example.com#",
    "https://example.com#frag",
    "https://user@example.com",
    "https://user:pw@example.com",
    "https://example.com:99999",
    "https://example.com:-1",
    "https://example.com:+443",
    "https://example.com:44a",
    "https://example.com:443:443",
    "https://exa mple.com",
    "https://exa\tmple.com",
    "https://exa\nmple.com",
    "https://exa\x00mple.com",
    "https://exämple.com",
    "https://evil.com\\.example.com",
    "https://.example.com",
    "https://a..example.com",
    "https://.",
    "https://*.example.com",
    "https://[::1",
    "https://::1",
    "https://[]",
    "https://[evil.com]",
    "https://[::1]x",
    "https://[::g]",
    "https://[fe80::1%25eth0]",
    "https://example.com https://other.com",
    "file://",
    LONG,
    HUGE,
]


# --- same_origin --------------------------------------------------------------------------

SAME_ORIGIN_CASES: list[tuple[str, str, bool]] = [
    # origin, host, expected
    ("https://chat.example.com", "chat.example.com", True),
    ("https://chat.example.com", "chat.example.com:443", True),
    ("https://chat.example.com:443", "chat.example.com", True),
    ("https://chat.example.com", "chat.example.com:80", False),
    ("https://chat.example.com", "chat.example.com:8443", False),
    ("https://chat.example.com:8443", "chat.example.com:8443", True),
    ("http://chat.example.com", "chat.example.com", True),
    ("http://chat.example.com", "chat.example.com:80", True),
    ("http://chat.example.com:80", "chat.example.com", True),
    ("http://chat.example.com", "chat.example.com:443", False),
    ("wss://chat.example.com", "chat.example.com:443", True),
    ("ws://chat.example.com", "chat.example.com:80", True),
    ("http://127.0.0.1:8765", "127.0.0.1:8765", True),
    ("http://127.0.0.1:8765", "127.0.0.1:8766", False),
    ("http://127.0.0.1:8765", "127.0.0.1", False),
    ("http://localhost:8765", "127.0.0.1:8765", False),
    # case
    ("HTTPS://Chat.Example.COM", "chat.example.com", True),
    ("https://chat.example.com", "CHAT.EXAMPLE.COM:443", True),
    # other hosts
    ("https://evil.com", "chat.example.com", False),
    ("https://example.com", "chat.example.com", False),
    ("https://chat.example.com.evil.com", "chat.example.com", False),
    ("https://chat.example.com", "chat.example.com.", False),
    ("https://chat.example.com.", "chat.example.com.", True),
    # IPv6
    ("http://[::1]:8765", "[::1]:8765", True),
    ("http://[::1]", "[::1]", True),
    ("http://[::1]", "[::1]:80", True),
    ("https://[::1]", "[::1]:443", True),
    ("http://[::1]:8765", "[::1]:8766", False),
    ("http://[::1]:8765", "[::2]:8765", False),
    ("http://[0:0:0:0:0:0:0:1]:8765", "[::1]:8765", True),
    ("http://[2001:DB8::1]", "[2001:db8::1]", True),
    ("http://[::1]:8765", "::1:8765", False),
    ("http://[::1]:8765", "[::1:8765", False),
    # surrounding blanks, as a lax header parser may leave them
    (" https://chat.example.com ", "\tchat.example.com ", True),
    # Host header with an empty port means the default port
    ("https://chat.example.com", "chat.example.com:", True),
    # not web schemes: no Host can name them
    ("chrome-extension://abcdef", "abcdef", False),
    ("ftp://chat.example.com:21", "chat.example.com:21", False),
    # "null" and malformed Host headers
    ("null", "null", False),
    ("https://chat.example.com", "", False),
    ("https://chat.example.com", "https://chat.example.com", False),
    ("https://chat.example.com", "chat.example.com/", False),
    ("https://chat.example.com", "user@chat.example.com", False),
    ("https://chat.example.com", "chat.example.com:x", False),
    ("https://chat.example.com", "chat.example.com:443:443", False),
    ("https://chat.example.com", "chat example.com", False),
    ("https://chat.example.com", "chat.example.com" + "m" * 1100, False),
    ("https://" + "a" * 1100, "a" * 1100, False),
]


@pytest.mark.parametrize(("origin", "host", "expected"), SAME_ORIGIN_CASES)
def test_same_origin(origin: str, host: str, expected: bool) -> None:
    assert same_origin(origin, host) is expected


@pytest.mark.parametrize("origin", MALFORMED)
def test_same_origin_is_false_for_malformed_origins(origin: str) -> None:
    assert same_origin(origin, "example.com") is False
    assert same_origin(origin, origin) is False


# --- allowlist entries --------------------------------------------------------------------

INVALID_ENTRIES: list[tuple[str, str]] = [
    # entry, a fragment of the message
    ("example.com", "needs a scheme"),
    ("localhost:3000", "needs a scheme"),
    ("*.example.com", "needs a scheme"),
    ("//example.com", "needs a scheme"),
    ("", "needs a scheme"),
    ("https://", "has no host"),
    ("https://example.com/", "has a path"),
    ("https://example.com/app", "has a path"),
    ("https://example.com?x=1", "query"),
    ("https://example.com#x", "fragment"),
    ("https://user@example.com", "user info"),
    ("https://example.com:http", "port"),
    ("https://example.com:70000", "port"),
    ("https://exa mple.com", "blanks"),
    ("https://exämple.com", "non-ASCII"),
    ("https://exa_mple!.com", "characters a host name cannot have"),
    ("https://a..example.com", "empty label"),
    ("https://[::1", "cannot be parsed"),
    ("https://*", "wildcard"),
    ("https://*.", "has no host"),
    ("https://a.*.example.com", "wildcard"),
    ("https://*example.com", "wildcard"),
    ("https://**.example.com", "wildcard"),
    ("https://*.*.example.com", "wildcard"),
    ("https://example.*", "wildcard"),
    ("*://example.com", "wildcard"),
    ("https://*.[::1]", "wildcard"),
    ("https://*.example.com/", "has a path"),
    ("**", "needs a scheme"),
    (LONG, "longer than 1024"),
]


@pytest.mark.parametrize(("entry", "message"), INVALID_ENTRIES)
def test_invalid_entries_raise_at_construction(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match="invalid allowed origin") as info:
        OriginPolicy(["https://fine.example.com", entry])
    assert message in str(info.value)


def test_a_single_string_is_not_an_allowlist() -> None:
    with pytest.raises(TypeError, match="not one string"):
        OriginPolicy("https://app.example.com")


@pytest.mark.parametrize(
    "allowed",
    [
        None,
        [],
        ["https://app.example.com", "*", "null"],
        ("http://localhost:3000", " https://*.example.com\t", "NULL", "HTTPS://APP.EXAMPLE.COM:443"),
        ["chrome-extension://abcdef", "http://[::1]:8765", "https://example.com:"],
    ],
)
def test_allowed_returns_the_entries_as_given(allowed: list[str] | tuple[str, ...] | None) -> None:
    policy = OriginPolicy(allowed)
    assert policy.allowed == (None if allowed is None else tuple(allowed))
    assert repr(policy) == f"OriginPolicy({policy.allowed!r})"


# --- allows and trusts_cookies ------------------------------------------------------------

HOST = "chat.example.com"
NO_LIST = None
APP = ["https://app.example.com", "http://localhost:3000"]
WILD = ["https://*.example.com"]
ANY = ["*"]
ANY_AND_APP = ["*", "https://app.example.com"]
NULL = ["null"]
MIXED_CASE = ["HTTPS://App.Example.COM:443", "http://LOCALHOST:3000", "HTTPS://*.Corp.Example.NET"]

POLICY_CASES: list[tuple[list[str] | None, str | None, str | None, bool, bool]] = [
    # allowed, origin, host, allows, trusts_cookies
    # no Origin header: not a browser
    (NO_LIST, None, HOST, True, True),
    (APP, None, HOST, True, True),
    ([], None, None, True, True),
    # no allowlist: every origin may connect, only the server's own is trusted with cookies
    (NO_LIST, "https://chat.example.com", HOST, True, True),
    (NO_LIST, "https://evil.com", HOST, True, False),
    (NO_LIST, "https://app.example.com", HOST, True, False),
    (NO_LIST, "null", HOST, True, False),
    (NO_LIST, "garbage", HOST, True, False),
    (NO_LIST, HUGE, HOST, True, False),
    (NO_LIST, "https://chat.example.com", None, True, False),
    # empty allowlist: only same-origin
    ([], "https://chat.example.com", HOST, True, True),
    ([], "https://chat.example.com:443", "chat.example.com:443", True, True),
    ([], "https://evil.com", HOST, False, False),
    ([], "null", HOST, False, False),
    ([], "https://chat.example.com", None, False, False),
    # exact entries
    (APP, "https://app.example.com", HOST, True, True),
    (APP, "https://app.example.com:443", HOST, True, True),
    (APP, "HTTPS://APP.EXAMPLE.COM", HOST, True, True),
    (APP, "https://app.example.com", None, True, True),
    (APP, "http://app.example.com", HOST, False, False),
    (APP, "https://app.example.com:8443", HOST, False, False),
    (APP, "https://other.example.com", HOST, False, False),
    (APP, "https://app.example.com.evil.com", HOST, False, False),
    (APP, "https://evilapp.example.com", HOST, False, False),
    (APP, "http://localhost:3000", HOST, True, True),
    (APP, "http://localhost", HOST, False, False),
    (APP, "http://localhost:3001", HOST, False, False),
    (APP, "https://localhost:3000", HOST, False, False),
    (APP, "https://chat.example.com", HOST, True, True),
    (APP, "https://chat.example.com", "chat.example.com:8443", False, False),
    (APP, "null", HOST, False, False),
    (APP, "https://app.example.com/", HOST, False, False),
    (APP, "https://app.example.com/", "app.example.com", False, False),
    # case and default ports in the entries themselves
    (MIXED_CASE, "https://app.example.com", HOST, True, True),
    (MIXED_CASE, "http://localhost:3000", HOST, True, True),
    (MIXED_CASE, "https://a.corp.example.net", HOST, True, True),
    (["http://x.com:80"], "http://x.com", HOST, True, True),
    (["http://x.com"], "http://x.com:80", HOST, True, True),
    (["https://x.com:"], "https://x.com", HOST, True, True),
    (["http://x.com:8080"], "http://x.com", HOST, False, False),
    # wildcard subdomains
    (WILD, "https://a.example.com", HOST, True, True),
    (WILD, "https://a.b.example.com", HOST, True, True),
    (WILD, "https://A.Example.Com", HOST, True, True),
    (WILD, "https://a.example.com:443", HOST, True, True),
    (WILD, "https://example.com", HOST, False, False),
    (WILD, "https://evil-example.com", HOST, False, False),
    (WILD, "https://evilexample.com", HOST, False, False),
    (WILD, "https://a.example.com.evil.com", HOST, False, False),
    (WILD, "https://.example.com", HOST, False, False),
    (WILD, "https://a..example.com", HOST, False, False),
    (WILD, "http://a.example.com", HOST, False, False),
    (WILD, "wss://a.example.com", HOST, False, False),
    (WILD, "https://a.example.com:8443", HOST, False, False),
    (WILD, "https://a.example.com.", HOST, False, False),
    (WILD, "https://*.example.com", HOST, False, False),
    (["https://*.example.com:8443"], "https://a.example.com:8443", HOST, True, True),
    (["https://*.example.com:8443"], "https://a.example.com", HOST, False, False),
    (["http://*.localhost"], "http://app.localhost", HOST, True, True),
    (["http://*.localhost"], "http://localhost", HOST, False, False),
    # "*": any well-formed origin may connect, but "*" never trusts cookies
    (ANY, "https://evil.com", HOST, True, False),
    (ANY, "http://localhost:1234", HOST, True, False),
    (ANY, "https://chat.example.com", HOST, True, True),
    (ANY, "null", HOST, True, False),
    (ANY, "garbage", HOST, False, False),
    (ANY, HUGE, HOST, False, False),
    (ANY_AND_APP, "https://app.example.com", HOST, True, True),
    (ANY_AND_APP, "https://evil.com", HOST, True, False),
    # "null": only when listed ("*" allows it too, but never trusts it)
    (NULL, "null", HOST, True, True),
    (NULL, "NULL", HOST, True, True),
    (NULL, " null ", HOST, True, True),
    (NULL, "https://evil.com", HOST, False, False),
    (["NULL"], "null", HOST, True, True),
    (NULL, "nul", HOST, False, False),
    (NULL, "null://x", HOST, False, False),
    # IPv6
    (["http://[::1]:8765"], "http://[::1]:8765", HOST, True, True),
    (["http://[0:0::1]:8765"], "http://[::1]:8765", HOST, True, True),
    (["http://[::1]:8765"], "http://[::1]:8766", HOST, False, False),
    ([], "http://[::1]:8765", "[::1]:8765", True, True),
    ([], "http://[::1]:8765", "[::1]", False, False),
    # a non-web scheme can be listed exactly
    (["chrome-extension://abcdef"], "chrome-extension://abcdef", HOST, True, True),
    (["chrome-extension://abcdef"], "chrome-extension://other", HOST, False, False),
    # malformed Host header: only the allowlist counts
    (APP, "https://chat.example.com", "chat.example.com/x", False, False),
    (APP, "https://app.example.com", "garbage garbage", True, True),
]


@pytest.mark.parametrize(("allowed", "origin", "host", "allows", "trusts"), POLICY_CASES)
def test_policy(
    allowed: list[str] | None, origin: str | None, host: str | None, allows: bool, trusts: bool
) -> None:
    policy = OriginPolicy(allowed)
    assert policy.allows(origin, host) is allows
    assert policy.trusts_cookies(origin, host) is trusts


POLICIES = [
    OriginPolicy(),
    OriginPolicy([]),
    OriginPolicy(APP + WILD + NULL),
    OriginPolicy(ANY),
    OriginPolicy(ANY_AND_APP),
]


@pytest.mark.parametrize("policy", POLICIES, ids=repr)
@pytest.mark.parametrize("origin", MALFORMED, ids=lambda origin: repr(origin[:40]))
def test_malformed_origins_are_never_trusted_and_refused_under_an_allowlist(
    policy: OriginPolicy, origin: str
) -> None:
    assert policy.trusts_cookies(origin, HOST) is False
    assert policy.trusts_cookies(origin, origin) is False
    assert policy.allows(origin, HOST) is (policy.allowed is None)


@pytest.mark.parametrize("policy", POLICIES, ids=repr)
def test_huge_values_are_rejected_quickly(policy: OriginPolicy) -> None:
    values = [HUGE, "null" + " " * 10_000_000, "https://" + "[" * 10_000_000, "https://a" + ":" * 10_000_000]
    start = time.perf_counter()
    for value in values:
        policy.allows(value, value)
        policy.trusts_cookies(value, value)
        policy.trusts_cookies("https://chat.example.com", value)
        same_origin(value, value)
    assert time.perf_counter() - start < 0.5
