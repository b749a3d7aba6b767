"""The wire protocol of PROTOCOL.md as data: text in, frames out; frames in, text out."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec
import pytest

from grestws.exceptions import FrameError, Issue
from grestws.protocol import (
    HANDSHAKE_OK,
    PONG,
    ErrorContext,
    Frame,
    FrameType,
    ResultEnvelope,
    decode_frame,
    decode_result,
    encode_call,
    encode_error,
    encode_frame,
    encode_ok,
    encode_reply,
    validation_issues,
)

H = FrameType.HANDSHAKE
K = FrameType.HANDSHAKE_OK
X = FrameType.HANDSHAKE_ERR
M = FrameType.MSG
R = FrameType.REQ
S = FrameType.RES
P = FrameType.PING
O = FrameType.PONG  # noqa: E741

LONGEST_PATH = "A" * 255 + "x"  # 256 bytes, the limit
MAX_SAFE_ID = 2**53 - 1


class TestFrames:
    """## Frames: ``<type>:<path>:<id>:<data>``."""

    @pytest.mark.parametrize(
        ("raw", "frame"),
        [
            pytest.param(b"h:::{}", Frame(H, "", None, b"{}"), id="h"),
            pytest.param(b"k:::null", Frame(K, "", None, b"null"), id="k"),
            pytest.param(
                b'x:::{"success":false,"type":"FORBIDDEN"}',
                Frame(X, "", None, b'{"success":false,"type":"FORBIDDEN"}'),
                id="x",
            ),
            pytest.param(
                b'm:ChatApi.markAsRead::{"messageId":"7"}',
                Frame(M, "ChatApi.markAsRead", None, b'{"messageId":"7"}'),
                id="m",
            ),
            pytest.param(
                b'r:ChatApi.sendMessage:1:{"text":"hi"}',
                Frame(R, "ChatApi.sendMessage", 1, b'{"text":"hi"}'),
                id="r",
            ),
            pytest.param(
                b'r:ChatApi.sendMessage:42:{"text":"hi"}',
                Frame(R, "ChatApi.sendMessage", 42, b'{"text":"hi"}'),
                id="r-two-digit-id",
            ),
            pytest.param(
                b'r:ChatApi.sendMessage:9007199254740991:{"text":"hi"}',
                Frame(R, "ChatApi.sendMessage", MAX_SAFE_ID, b'{"text":"hi"}'),
                id="r-largest-safe-id",
            ),
            pytest.param(
                b'r:ChatApi.sendMessage:1234567890123456:{"text":"hi"}',
                Frame(R, "ChatApi.sendMessage", 1234567890123456, b'{"text":"hi"}'),
                id="r-sixteen-digits",
            ),
            pytest.param(
                b's:ChatApi.sendMessage:1:{"success":true,"type":"OK"}',
                Frame(S, "ChatApi.sendMessage", 1, b'{"success":true,"type":"OK"}'),
                id="s",
            ),
            pytest.param(b"p:::", Frame(P, "", None, b""), id="p"),
            pytest.param(b"o:::", Frame(O, "", None, b""), id="o"),
        ],
    )
    def test_decode_each_kind(self, raw: bytes, frame: Frame) -> None:
        assert decode_frame(raw) == frame

    @pytest.mark.parametrize(
        ("raw", "frame"),
        [
            pytest.param(b"k:::", Frame(K, "", None, b""), id="k-no-data"),
            pytest.param(b"h:::", Frame(H, "", None, b""), id="h-no-data"),
            pytest.param(b"m:Api.ping::", Frame(M, "Api.ping", None, b""), id="m-no-data"),
            pytest.param(b"r:Api.ping:3:", Frame(R, "Api.ping", 3, b""), id="r-no-data"),
            pytest.param(b"s:Api.ping:3:", Frame(S, "Api.ping", 3, b""), id="s-no-data"),
            pytest.param(b"p:::", Frame(P), id="p-all-empty"),
        ],
    )
    def test_decode_empty_fields(self, raw: bytes, frame: Frame) -> None:
        assert decode_frame(raw) == frame

    @pytest.mark.parametrize(
        ("raw", "data"),
        [
            pytest.param(b'r:Api.x:1:{"url":"ws://h:1/p"}', b'{"url":"ws://h:1/p"}', id="colons-in-string"),
            pytest.param(b'r:Api.x:1:{"a:b":"c:d"}', b'{"a:b":"c:d"}', id="colon-in-key"),
            pytest.param(b'r:Api.x:1:":::"', b'":::"', id="only-colons"),
            pytest.param(
                b'h:::{"authorization":"Basic dTpw:x"}', b'{"authorization":"Basic dTpw:x"}', id="h-headers"
            ),
            pytest.param(b"m:Api.x:::", b":", id="data-is-a-colon"),
            pytest.param(b'm:Api.x::"a\nb"', b'"a\nb"', id="newline-in-data"),
        ],
    )
    def test_data_is_everything_after_the_third_colon(self, raw: bytes, data: bytes) -> None:
        assert decode_frame(raw).data == data

    def test_decode_accepts_str(self) -> None:
        assert decode_frame('r:Api.x:1:{"a":"é"}') == Frame(R, "Api.x", 1, '{"a":"é"}'.encode())

    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("ChatApi.sendMessage", id="ascii"),
            pytest.param("Grüße.sagen", id="utf8"),
            pytest.param(LONGEST_PATH, id="256-bytes"),
        ],
    )
    def test_path_is_decoded_from_utf8(self, path: str) -> None:
        assert decode_frame(b"m:" + path.encode() + b"::").path == path

    @pytest.mark.parametrize(
        ("raw", "match"),
        [
            pytest.param(b"", "expected <type>", id="empty"),
            pytest.param(b"r", "expected <type>", id="no-colon"),
            pytest.param(b"k:", "expected <type>", id="one-colon"),
            pytest.param(b"k::", "expected <type>", id="two-colons"),
            pytest.param(b"m:Api.x:", "expected <type>", id="m-two-colons"),
            pytest.param(b"r:Api.x:1", "expected <type>", id="r-two-colons"),
            pytest.param(b"z:::", "unknown frame type", id="unknown-letter"),
            pytest.param(b"H:::", "unknown frame type", id="upper-case-letter"),
            pytest.param(b"\xff:::", "unknown frame type", id="non-ascii-letter"),
            pytest.param(b":::", "unknown frame type", id="empty-type"),
            pytest.param(b"rr:Api.x:1:", "unknown frame type", id="two-letters"),
            pytest.param(b"req:Api.x:1:", "unknown frame type", id="word"),
            pytest.param(b"r:Api.x::{}", "decimal id", id="r-without-id"),
            pytest.param(b"s:Api.x::{}", "decimal id", id="s-without-id"),
            pytest.param(b"r:Api.x:abc:", "decimal id", id="id-letters"),
            pytest.param(b"r:Api.x:1a:", "decimal id", id="id-trailing-letter"),
            pytest.param(b"r:Api.x:0x1:", "decimal id", id="id-hex"),
            pytest.param(b"r:Api.x:1.0:", "decimal id", id="id-float"),
            pytest.param(b"r:Api.x:1e3:", "decimal id", id="id-exponent"),
            pytest.param(b"r:Api.x: 1:", "decimal id", id="id-space"),
            pytest.param(b"r:Api.x:\xd9\xa1:", "decimal id", id="id-arabic-indic-digit-one"),
            pytest.param(b"r:Api.x:+1:", "decimal id", id="id-plus"),
            pytest.param(b"s:Api.x:-1:", "decimal id", id="id-minus"),
            pytest.param(b"r:Api.x:01:", "decimal id", id="id-leading-zero"),
            pytest.param(b"r:Api.x:0:", "decimal id", id="id-zero"),
            pytest.param(b"r:Api.x:12345678901234567:", "decimal id", id="id-17-digits"),
            pytest.param(b"r::1:{}", "without a path", id="r-without-path"),
            pytest.param(b"s::1:{}", "without a path", id="s-without-path"),
            pytest.param(b"m:::{}", "without a path", id="m-without-path"),
            pytest.param(b"m:Api.x:1:{}", "must not carry an id", id="m-with-id"),
            pytest.param(b"m:Api.\xff::", "not UTF-8", id="m-path-not-utf8"),
            pytest.param(b"r:\xc3:1:", "not UTF-8", id="r-path-truncated-utf8"),
            pytest.param(b"m:" + b"A" * 257 + b"::", "too long", id="path-257-bytes"),
            pytest.param(b"r:" + b"A" * 10_000 + b":1:", "too long", id="path-10000-bytes"),
        ],
    )
    def test_malformed(self, raw: bytes, match: str) -> None:
        with pytest.raises(FrameError, match=match):
            decode_frame(raw)

    def test_frame_error_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="unknown frame type"):
            decode_frame(b"q:::")

    @pytest.mark.parametrize(
        ("kind", "path", "id", "data", "raw"),
        [
            pytest.param(H, "", None, b"{}", b"h:::{}", id="h"),
            pytest.param(K, "", None, b"null", b"k:::null", id="k"),
            pytest.param(X, "", None, b'{"success":false}', b'x:::{"success":false}', id="x"),
            pytest.param(M, "Api.ping", None, b"", b"m:Api.ping::", id="m-no-data"),
            pytest.param(M, "Api.note", None, b'{"a":1}', b'm:Api.note::{"a":1}', id="m"),
            pytest.param(R, "Api.echo", 1, b'"a:b"', b'r:Api.echo:1:"a:b"', id="r"),
            pytest.param(R, "Api.echo", MAX_SAFE_ID, b"", b"r:Api.echo:9007199254740991:", id="r-big-id"),
            pytest.param(S, "Api.echo", 12, b"{}", b"s:Api.echo:12:{}", id="s"),
            pytest.param(P, "", None, b"", b"p:::", id="p"),
            pytest.param(O, "", None, b"", b"o:::", id="o"),
            pytest.param(M, "Grüße.sagen", None, b"", "m:Grüße.sagen::".encode(), id="utf8-path"),
        ],
    )
    def test_encode(self, kind: FrameType, path: str, id: int | None, data: bytes, raw: bytes) -> None:
        assert encode_frame(kind, path, id, data) == raw
        assert decode_frame(raw) == Frame(kind, path, id, data)

    def test_encode_defaults_to_empty_fields(self) -> None:
        assert encode_frame(FrameType.PING) == b"p:::"

    @pytest.mark.parametrize("path", ["Api:x", ":", "Api.x:"])
    def test_encode_refuses_a_colon_in_the_path(self, path: str) -> None:
        with pytest.raises(FrameError, match="cannot contain ':'"):
            encode_frame(FrameType.MSG, path)

    @pytest.mark.parametrize("kind", list(FrameType), ids=lambda kind: kind.name)
    def test_every_type_is_one_letter(self, kind: FrameType) -> None:
        rest = b":Api.x:1:" if kind in (R, S) else b":Api.x::" if kind is M else b":::"
        assert len(kind.value) == 1
        assert decode_frame(kind.value + rest).type is kind

    def test_the_eight_letters(self) -> None:
        assert {kind.value for kind in FrameType} == {b"h", b"k", b"x", b"m", b"r", b"s", b"p", b"o"}

    @pytest.mark.parametrize("size", [0, 100, 16 * 1024 - 1, 16 * 1024, 1 << 20])
    @pytest.mark.parametrize("container", [bytes, bytearray])
    def test_data_of_any_size_from_bytes_or_bytearray(self, size: int, container: type[bytes]) -> None:
        data = b'"' + b"a:b" * (size // 3) + b'"'
        raw = container(b"r:Api.echo:7:" + data)
        frame = decode_frame(raw)
        assert (frame.type, frame.path, frame.id) == (R, "Api.echo", 7)
        assert bytes(frame.data) == data
        # a large payload is read where it arrived; a small one is a bytes of its own
        assert isinstance(frame.data, memoryview if len(data) >= 16 * 1024 else bytes)

    @pytest.mark.parametrize("result", [None, 0, "a:b", {"items": list(range(5000))}])
    def test_encode_reply_round_trip(self, result: Any) -> None:
        raw = encode_reply(b"Api.echo", 12, result)
        frame = decode_frame(raw)
        assert (frame.type, frame.path, frame.id) == (S, "Api.echo", 12)
        envelope = decode_result(bytes(frame.data))
        assert envelope.success
        assert msgspec.json.decode(envelope.data) == result
        assert encode_reply(b"Api.echo", 12, result, has_result=False) == b"s:Api.echo:12:" + encode_ok(None)

    @pytest.mark.parametrize(("id", "kind"), [(5, R), (None, M)])
    def test_encode_call(self, id: int | None, kind: FrameType) -> None:
        prefix = kind.value + b":Api.note:"
        assert encode_call(prefix, id, {"a": [1, "x:y"]}) == encode_frame(
            kind, "Api.note", id, b'{"a":[1,"x:y"]}'
        )
        assert encode_call(prefix, id, None, has_input=False) == encode_frame(kind, "Api.note", id)


class TestHandshake:
    """## Handshake: ``h`` with headers, ``k`` accepted, ``x`` refused with an envelope."""

    def test_handshake_ok_constant(self) -> None:
        assert HANDSHAKE_OK == b"k:::null"
        assert decode_frame(HANDSHAKE_OK) == Frame(K, "", None, b"null")

    def test_h_carries_a_json_object_of_headers(self) -> None:
        frame = decode_frame(b'h:::{"authorization":"Bearer t:1"}')
        assert frame.type is H
        assert msgspec.json.decode(frame.data) == {"authorization": "Bearer t:1"}

    def test_x_carries_an_error_envelope(self) -> None:
        envelope = encode_error("NOT_AUTHORIZED", 401, message="No token", timestamp=1, ref="r1")
        frame = decode_frame(encode_frame(X, data=envelope))
        result = decode_result(frame.data)
        assert (result.success, result.type, result.status_code) == (False, "NOT_AUTHORIZED", 401)
        assert result.context == ErrorContext(display_message="No token", timestamp=1, ref="r1")


class TestResultEnvelope:
    """## Result envelope: the data of ``s`` (and ``x``)."""

    @pytest.mark.parametrize(
        ("data", "envelope"),
        [
            pytest.param(None, b'{"success":true,"type":"OK"}', id="no-data"),
            pytest.param(b"null", b'{"success":true,"type":"OK","data":null}', id="null"),
            pytest.param(b"0", b'{"success":true,"type":"OK","data":0}', id="zero"),
            pytest.param(b'""', b'{"success":true,"type":"OK","data":""}', id="empty-string"),
            pytest.param(
                b'{"messageId":"m:1"}',
                b'{"success":true,"type":"OK","data":{"messageId":"m:1"}}',
                id="object",
            ),
        ],
    )
    def test_encode_ok(self, data: bytes | None, envelope: bytes) -> None:
        assert encode_ok(data) == envelope

    @pytest.mark.parametrize(
        ("kwargs", "envelope"),
        [
            pytest.param(
                {},
                b'{"success":false,"type":"ROOM_FULL","statusCode":400,"context":{}}',
                id="bare",
            ),
            pytest.param(
                {"data": b'{"seats":8}'},
                b'{"success":false,"type":"ROOM_FULL","statusCode":400,"data":{"seats":8},"context":{}}',
                id="data",
            ),
            pytest.param(
                {"message": "Room is full", "timestamp": 1700000000000, "ref": "0123abcd"},
                b'{"success":false,"type":"ROOM_FULL","statusCode":400,"context":'
                b'{"displayMessage":"Room is full","timestamp":1700000000000,"ref":"0123abcd"}}',
                id="context",
            ),
            pytest.param(
                {"data": b"[]", "message": "Room is full", "timestamp": 5, "ref": "r"},
                b'{"success":false,"type":"ROOM_FULL","statusCode":400,"data":[],"context":'
                b'{"displayMessage":"Room is full","timestamp":5,"ref":"r"}}',
                id="everything",
            ),
            pytest.param(
                {"ref": "r"},
                b'{"success":false,"type":"ROOM_FULL","statusCode":400,"context":{"ref":"r"}}',
                id="ref-only",
            ),
        ],
    )
    def test_encode_error(self, kwargs: dict[str, Any], envelope: bytes) -> None:
        assert encode_error("ROOM_FULL", 400, **kwargs) == envelope

    def test_encode_error_escapes_the_message(self) -> None:
        message = 'say "hi"\n\\ and ünïcode'
        envelope = encode_error("BAD_REQUEST", 400, message=message)
        assert json.loads(envelope)["context"]["displayMessage"] == message

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(
                b'{"success":true,"type":"OK"}',
                (True, "OK", b"", None, None),
                id="ok-without-data",
            ),
            pytest.param(
                b'{"success":true,"type":"OK","data":null}',
                (True, "OK", b"null", None, None),
                id="ok-null-data",
            ),
            pytest.param(
                b'{"success":true,"type":"OK","data":{"a":[1,":"]}}',
                (True, "OK", b'{"a":[1,":"]}', None, None),
                id="ok-object-data-stays-raw",
            ),
            pytest.param(
                b'{"success":false,"type":"NOT_FOUND","statusCode":404,"context":'
                b'{"displayMessage":"gone","timestamp":17,"ref":"abc"}}',
                (False, "NOT_FOUND", b"", 404, ErrorContext("gone", 17, "abc")),
                id="error-full",
            ),
            pytest.param(
                b'{"success":false,"type":"NOT_FOUND"}',
                (False, "NOT_FOUND", b"", None, None),
                id="error-without-statusCode-or-context",
            ),
            pytest.param(
                b'{"success":false,"type":"NOT_FOUND","context":{"ref":"abc"}}',
                (False, "NOT_FOUND", b"", None, ErrorContext(ref="abc")),
                id="error-without-statusCode",
            ),
            pytest.param(
                b'{"success":false,"type":"ROOM_FULL","statusCode":400,"data":{"seats":8}}',
                (False, "ROOM_FULL", b'{"seats":8}', 400, None),
                id="error-without-context",
            ),
            pytest.param(
                b'{"success":false,"type":"X","statusCode":400,"context":{}}',
                (False, "X", b"", 400, ErrorContext()),
                id="error-empty-context",
            ),
            pytest.param(
                b'{"type":"OK","extra":1,"success":true,"context":{"traceId":"t"}}',
                (True, "OK", b"", None, ErrorContext()),
                id="unknown-fields-ignored",
            ),
        ],
    )
    def test_decode_result(
        self, raw: bytes, expected: tuple[bool, str, bytes, int | None, ErrorContext | None]
    ) -> None:
        result = decode_result(raw)
        assert isinstance(result, ResultEnvelope)
        assert (
            result.success,
            result.type,
            bytes(result.data),
            result.status_code,
            result.context,
        ) == expected

    @pytest.mark.parametrize(
        ("raw", "error"),
        [
            pytest.param(b'{"type":"OK"}', msgspec.ValidationError, id="no-success"),
            pytest.param(b'{"success":true}', msgspec.ValidationError, id="no-type"),
            pytest.param(b'{"success":"yes","type":"OK"}', msgspec.ValidationError, id="success-not-bool"),
            pytest.param(
                b'{"success":false,"type":"X","statusCode":"400"}', msgspec.ValidationError, id="code"
            ),
            pytest.param(b"[]", msgspec.ValidationError, id="not-an-object"),
            pytest.param(b"", msgspec.DecodeError, id="empty"),
            pytest.param(b"{", msgspec.DecodeError, id="truncated"),
            pytest.param(b"OK", msgspec.DecodeError, id="not-json"),
        ],
    )
    def test_decode_result_refuses(self, raw: bytes, error: type[Exception]) -> None:
        with pytest.raises(error):
            decode_result(raw)

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({}, id="bare"),
            pytest.param({"data": b'{"seats":8}', "message": "full", "timestamp": 3, "ref": "r"}, id="all"),
        ],
    )
    def test_encode_error_round_trip(self, kwargs: dict[str, Any]) -> None:
        result = decode_result(encode_error("ROOM_FULL", 400, **kwargs))
        assert (result.success, result.type, result.status_code) == (False, "ROOM_FULL", 400)
        assert bytes(result.data) == kwargs.get("data", b"")
        assert result.context == ErrorContext(
            display_message=kwargs.get("message"), timestamp=kwargs.get("timestamp"), ref=kwargs.get("ref")
        )

    @pytest.mark.parametrize("data", [None, b"null", b'{"x":1}'])
    def test_encode_ok_round_trip(self, data: bytes | None) -> None:
        result = decode_result(encode_ok(data))
        assert (result.success, result.type, bytes(result.data)) == (True, "OK", data or b"")


class Inner(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class Outer(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    items: list[Inner]
    title: Annotated[str, msgspec.Meta(min_length=1)]
    channel_id: int = 0
    count: Annotated[int, msgspec.Meta(ge=0)] = 0
    pair: tuple[int, int] = (0, 0)
    grid: list[list[int]] = []
    mode: Literal["a", "b"] = "a"
    tags: dict[str, int] = {}


_outer = msgspec.json.Decoder(Outer)


def _issues(raw: bytes) -> list[Issue]:
    with pytest.raises(msgspec.MsgspecError) as caught:
        _outer.decode(raw)
    return validation_issues(caught.value)


class TestCallsValidation:
    """## Calls, Validation: a bad payload becomes VALIDATION_ERROR's list of issues."""

    @pytest.mark.parametrize(
        ("raw", "issue"),
        [
            pytest.param(
                b'{"items":[]}',
                Issue("title", "missing_field", "Object missing required field `title`"),
                id="missing-field",
            ),
            pytest.param(
                b'{"items":[{"name":"a"},{}],"title":"t"}',
                Issue("items.1.name", "missing_field", "Object missing required field `name`"),
                id="missing-nested-field",
            ),
            pytest.param(
                b'{"items":[],"title":"t","channelId":"x"}',
                Issue("channelId", "invalid_type", "Expected `int`, got `str`"),
                id="wrong-type-uses-wire-name",
            ),
            pytest.param(
                b'{"items":[{"name":5}],"title":"t"}',
                Issue("items.0.name", "invalid_type", "Expected `str`, got `int`"),
                id="wrong-type-in-list",
            ),
            pytest.param(
                b'{"items":{},"title":"t"}',
                Issue("items", "invalid_type", "Expected `array`, got `object`"),
                id="object-for-list",
            ),
            pytest.param(
                b'{"items":[],"title":"t","pair":[1,"x"]}',
                Issue("pair.1", "invalid_type", "Expected `int`, got `str`"),
                id="wrong-type-in-tuple",
            ),
            pytest.param(
                b'{"items":[],"title":"t","grid":[[1],[2,"x"]]}',
                Issue("grid.1.1", "invalid_type", "Expected `int`, got `str`"),
                id="nested-lists",
            ),
            pytest.param(
                b"[]",
                Issue("", "invalid_type", "Expected `object`, got `array`"),
                id="top-level-type",
            ),
            pytest.param(
                b'{"items":[],"title":"t","extra":1}',
                Issue("extra", "unknown_field", "Object contains unknown field `extra`"),
                id="unknown-field",
            ),
            pytest.param(
                b'{"items":[{"name":"a","extra":1}],"title":"t"}',
                Issue("items.0.extra", "unknown_field", "Object contains unknown field `extra`"),
                id="unknown-nested-field",
            ),
            pytest.param(
                b'{"items":[],"title":""}',
                Issue("title", "invalid_value", "Expected `str` of length >= 1"),
                id="min-length",
            ),
            pytest.param(
                b'{"items":[],"title":"t","count":-1}',
                Issue("count", "invalid_value", "Expected `int` >= 0"),
                id="minimum",
            ),
            pytest.param(
                b'{"items":[],"title":"t","mode":"c"}',
                Issue("mode", "invalid_value", "Invalid enum value 'c'"),
                id="literal",
            ),
            pytest.param(b"{", Issue("", "invalid_json", "Input data was truncated"), id="truncated-json"),
            pytest.param(b"", Issue("", "invalid_json", "Input data was truncated"), id="empty-payload"),
        ],
    )
    def test_issue(self, raw: bytes, issue: Issue) -> None:
        assert _issues(raw) == [issue]

    @pytest.mark.parametrize("raw", [b"{]", b"nope", b'{"items":[] "title":"t"}', b"\xff"])
    def test_invalid_json(self, raw: bytes) -> None:
        (issue,) = _issues(raw)
        assert issue.code == "invalid_json"
        assert issue.path == ""
        assert "JSON" in issue.message or "malformed" in issue.message

    def test_dict_value_path(self) -> None:
        (issue,) = _issues(b'{"items":[],"title":"t","tags":{"a":"x"}}')
        assert issue == Issue("tags", "invalid_type", "Expected `int`, got `str`")

    def test_issues_encode_as_protocol_md_says(self) -> None:
        issues = _issues(b'{"items":[{"name":5}],"title":"t"}')
        assert msgspec.json.decode(msgspec.json.encode(issues)) == [
            {"path": "items.0.name", "code": "invalid_type", "message": "Expected `str`, got `int`"}
        ]


class TestLiveness:
    """## Liveness: ``p:::`` is answered with ``o:::``."""

    def test_pong_constant(self) -> None:
        assert PONG == b"o:::"
        assert decode_frame(PONG) == Frame(O)

    def test_ping_frame(self) -> None:
        assert encode_frame(FrameType.PING) == b"p:::"
        assert decode_frame(b"p:::") == Frame(P)
