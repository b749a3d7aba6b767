"""Declaring contracts: wire paths, method specs, schemas, and the error classes they name."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Protocol

import msgspec
import pytest

from grestws import (
    ApiError,
    BadRequestError,
    ConnectError,
    ConnectionClosedError,
    ContractError,
    ExistsError,
    ForbiddenError,
    FrameError,
    GrestwsError,
    HandshakeTimeoutError,
    InvalidStateError,
    Issue,
    NotAuthorizedError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    RetryAfter,
    RouteNotFoundError,
    ServerError,
    SocketContract,
    SocketSchema,
    TooManyRequestsError,
    UnavailableError,
    ValidationError,
    notify,
    request,
)
from grestws.contract import ContractHalf, MethodKind, MethodSpec
from grestws.contract.envelopes import error_from_envelope
from grestws.contract.methods import IMPLICIT_ERRORS, camel, nests_freely
from grestws.exceptions import STANDARD_ERRORS
from grestws.protocol.frames import ResultEnvelope

# -- payloads and errors ------------------------------------------------------------------


class RoomInfo(msgspec.Struct):
    seats: int


class SendMessageRequest(msgspec.Struct, rename="camel"):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    channel_id: str


class SendMessageResponse(msgspec.Struct, rename="camel"):
    message_id: str


class RoomFull(ApiError[RoomInfo], type="ROOM_FULL", status_code=400):
    """The room has no free seat."""


class Banned(ApiError, type="BANNED", status_code=403):
    """No data."""


class NotSoFull(RoomFull):
    """Inherits type, status code and data type."""


# -- contract halves ----------------------------------------------------------------------


class ChatServer(Protocol):
    @request(errors=[RoomFull, Banned])
    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        """Post a message."""
        ...

    @notify
    async def mark_as_read(self, message_id: str) -> None: ...

    @request(name="whoIsThere")
    async def who_is_there(self) -> list[str]: ...

    @request
    async def leave(self) -> None: ...

    def _helper(self) -> None:
        """Private names are not methods of the contract."""


class ChatClient(Protocol):
    @notify
    async def new_message(self, text: str) -> None: ...

    @request
    async def are_you_there(self) -> bool: ...


class ExtendedServer(ChatServer, Protocol):
    @request
    async def extra_call(self, n: int) -> int: ...


Chat = SocketContract("ChatApi", client_to_server=ChatServer, server_to_client=ChatClient)
CamelChat = SocketContract(
    "ChatApi", client_to_server=ChatServer, server_to_client=ChatClient, rename="camel"
)


# -- broken halves, each refused with a ContractError ---------------------------------------


class Undecorated(Protocol):
    async def send(self, text: str) -> None: ...


class NotAsync(Protocol):
    @request  # type: ignore[type-var]
    def send(self, text: str) -> None: ...


class TwoParams(Protocol):
    @request
    async def send(self, text: str, channel: str) -> None: ...


class KeywordOnly(Protocol):
    @request
    async def send(self, *, text: str) -> None: ...


class VarArgs(Protocol):
    @request
    async def send(self, *texts: str) -> None: ...


class NotifyWithResult(Protocol):
    @notify
    async def send(self, text: str) -> int: ...


class ErrorNotApiError(Protocol):
    @request(errors=[ValueError])  # type: ignore[list-item]
    async def send(self, text: str) -> None: ...


class ErrorInstance(Protocol):
    @request(errors=[NotFoundError()])  # type: ignore[list-item]
    async def send(self, text: str) -> None: ...


class ColonName(Protocol):
    @request(name="send:now")
    async def send(self, text: str) -> None: ...


class DotName(Protocol):
    @request(name="send.now")
    async def send(self, text: str) -> None: ...


class DuplicateName(Protocol):
    @request(name="send")
    async def send_one(self, text: str) -> None: ...

    @notify(name="send")
    async def send_two(self, text: str) -> None: ...


class CamelCollision(Protocol):
    @request
    async def send_message(self) -> None: ...

    @request
    async def sendMessage(self) -> None: ...


class UnresolvedAnnotation(Protocol):
    @request
    async def send(self, text: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821


class UnsupportedType(Protocol):
    @request
    async def send(self, n: Annotated[int, msgspec.Meta(min_length=1)]) -> None: ...


class EmptyName(Protocol):
    @request(name="")
    async def send(self) -> None: ...


class Fine(Protocol):
    @request
    async def send(self) -> None: ...


# -- handlers -------------------------------------------------------------------------------


class PartialHandler(ChatServer):
    """Implements two of the four methods; the others stay the Protocol's stubs."""

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        return SendMessageResponse(message_id="1")

    async def leave(self) -> None:
        return None


class DuckHandler:
    """Implements one method without inheriting from the Protocol."""

    async def who_is_there(self) -> list[str]:
        return []


class RecordingCaller:
    """Stands in for a session: records what a proxy sends through it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, MethodSpec, Any, float | None]] = []

    def request(self, spec: MethodSpec, arg: Any, timeout: float | None) -> Awaitable[Any]:
        self.calls.append(("request", spec, arg, timeout))
        return _value(f"answer to {spec.path}")

    def notify(self, spec: MethodSpec, arg: Any) -> Awaitable[None]:
        self.calls.append(("notify", spec, arg, None))
        return _value(None)


async def _value(value: Any) -> Any:
    return value


# -- tests ----------------------------------------------------------------------------------


class TestWirePaths:
    def test_paths_are_contract_dot_method(self) -> None:
        assert [spec.path for spec in Chat.client_to_server] == [
            "ChatApi.send_message",
            "ChatApi.mark_as_read",
            "ChatApi.whoIsThere",
            "ChatApi.leave",
        ]
        assert [spec.path for spec in Chat.server_to_client] == [
            "ChatApi.new_message",
            "ChatApi.are_you_there",
        ]

    def test_camel_rename(self) -> None:
        assert [spec.path for spec in CamelChat.client_to_server] == [
            "ChatApi.sendMessage",
            "ChatApi.markAsRead",
            "ChatApi.whoIsThere",
            "ChatApi.leave",
        ]
        assert [spec.wire_name for spec in CamelChat.server_to_client] == ["newMessage", "areYouThere"]

    def test_explicit_name_wins_over_rename(self) -> None:
        assert Chat.client_to_server.methods["who_is_there"].wire_name == "whoIsThere"
        assert CamelChat.client_to_server.methods["who_is_there"].wire_name == "whoIsThere"

    def test_methods_by_python_name_and_by_path(self) -> None:
        half = CamelChat.client_to_server
        assert list(half.methods) == ["send_message", "mark_as_read", "who_is_there", "leave"]
        assert half.by_path["ChatApi.sendMessage"] is half.methods["send_message"]
        assert set(half.by_path) == {spec.path for spec in half}

    def test_private_names_are_not_methods(self) -> None:
        assert "_helper" not in Chat.client_to_server.methods

    def test_base_protocol_methods_come_first(self) -> None:
        half = ContractHalf("Ext", ExtendedServer, rename=None)
        assert list(half.methods) == ["send_message", "mark_as_read", "who_is_there", "leave", "extra_call"]

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("send_message", "sendMessage"),
            ("mark_as_read", "markAsRead"),
            ("ping", "ping"),
            ("are_you_there", "areYouThere"),
            ("get_a_b", "getAB"),
            ("already_camelCase", "alreadyCamelCase"),
        ],
    )
    def test_camel(self, name: str, expected: str) -> None:
        assert camel(name) == expected

    def test_contract_repr_and_name(self) -> None:
        assert Chat.name == "ChatApi"
        assert repr(Chat) == "<SocketContract ChatApi>"


class TestContractErrors:
    @pytest.mark.parametrize(
        ("protocol", "match"),
        [
            pytest.param(
                Undecorated, r"Bad\.send: decorate the stub with @request or @notify", id="undecorated"
            ),
            pytest.param(NotAsync, r"Bad\.send: contract methods are 'async def' stubs", id="not-async"),
            pytest.param(TwoParams, "at most one positional argument", id="two-params"),
            pytest.param(KeywordOnly, "at most one positional argument", id="keyword-only"),
            pytest.param(VarArgs, "at most one positional argument", id="var-args"),
            pytest.param(NotifyWithResult, "a @notify method returns None", id="notify-returns"),
            pytest.param(ErrorNotApiError, "errors must be ApiError subclasses", id="error-not-api-error"),
            pytest.param(ErrorInstance, "errors must be ApiError subclasses", id="error-instance"),
            pytest.param(ColonName, "wire name 'send:now' cannot contain ':'", id="colon-in-name"),
            pytest.param(DotName, "wire name 'send.now' cannot contain", id="dot-in-name"),
            pytest.param(DuplicateName, r"Bad\.send is declared twice", id="duplicate-name"),
            pytest.param(UnresolvedAnnotation, "cannot resolve its annotations", id="unresolved-annotation"),
            pytest.param(UnsupportedType, "msgspec cannot handle its types", id="unsupported-type"),
        ],
    )
    @pytest.mark.parametrize("side", ["client_to_server", "server_to_client"])
    def test_bad_half(self, protocol: type[Any], match: str, side: str) -> None:
        halves: dict[str, Any] = {"client_to_server": Fine, "server_to_client": Fine, side: protocol}
        with pytest.raises(ContractError, match=match):
            SocketContract(
                "Bad",
                client_to_server=halves["client_to_server"],
                server_to_client=halves["server_to_client"],
            )

    def test_camel_rename_can_collide(self) -> None:
        SocketContract("Bad", client_to_server=CamelCollision, server_to_client=Fine)
        with pytest.raises(ContractError, match=r"Bad\.sendMessage is declared twice"):
            SocketContract("Bad", client_to_server=CamelCollision, server_to_client=Fine, rename="camel")

    def test_the_same_path_in_both_halves_is_fine(self) -> None:
        contract = SocketContract("Same", client_to_server=Fine, server_to_client=Fine)
        assert (
            contract.client_to_server.methods["send"].path == contract.server_to_client.methods["send"].path
        )

    @pytest.mark.parametrize("name", ["", "1Chat", "Chat.Api", "Chat:Api", "Chat Api", "Chat-Api", "Ünï"])
    def test_bad_contract_name(self, name: str) -> None:
        with pytest.raises(ContractError, match="must be an identifier"):
            SocketContract(name, client_to_server=Fine, server_to_client=Fine)

    @pytest.mark.parametrize("name", ["Chat", "chat_api", "_Chat", "Api2"])
    def test_good_contract_name(self, name: str) -> None:
        assert SocketContract(name, client_to_server=Fine, server_to_client=Fine).name == name

    def test_contract_name_with_trailing_newline(self) -> None:
        with pytest.raises(ContractError, match="must be an identifier"):
            SocketContract("Chat\n", client_to_server=Fine, server_to_client=Fine)

    def test_empty_wire_name(self) -> None:
        with pytest.raises(ContractError, match="wire name"):
            SocketContract("Bad", client_to_server=EmptyName, server_to_client=Fine)

    @pytest.mark.parametrize("rename", ["snake", "CAMEL", "camelCase", ""])
    def test_bad_rename(self, rename: str) -> None:
        with pytest.raises(ContractError, match="rename must be None or 'camel'"):
            SocketContract("Chat", client_to_server=Fine, server_to_client=Fine, rename=rename)

    @pytest.mark.parametrize("half", [PartialHandler(), "Fine", None])  # type: ignore[abstract]
    def test_half_must_be_a_class(self, half: Any) -> None:
        with pytest.raises(ContractError, match="client_to_server must be a class"):
            SocketContract("Chat", client_to_server=half, server_to_client=Fine)

    def test_contract_error_is_a_type_error(self) -> None:
        with pytest.raises(TypeError):
            SocketContract("Bad", client_to_server=Undecorated, server_to_client=Fine)


class TestSocketSchema:
    @pytest.mark.parametrize(
        ("path", "normalised"),
        [
            ("/ws/chat", "/ws/chat"),
            ("ws/chat", "/ws/chat"),
            ("chat", "/chat"),
            ("/", "/"),
            ("", "/"),
        ],
    )
    def test_path_gets_a_leading_slash(self, path: str, normalised: str) -> None:
        assert Chat.at(path).path == normalised
        assert SocketSchema(Chat, path).path == normalised

    @pytest.mark.parametrize("path", ["/ws/chat?room=1", "/ws/chat?", "ws?x", "/ws/chat#top"])
    def test_query_or_fragment_refused(self, path: str) -> None:
        with pytest.raises(ContractError, match="cannot carry a query or fragment"):
            Chat.at(path)

    def test_schema_names_its_contract(self) -> None:
        schema = Chat.at("ws/chat")
        assert schema.contract is Chat
        assert schema.name == "ChatApi"
        assert repr(schema) == "<SocketSchema ChatApi at /ws/chat>"


class TestMethodSpec:
    def test_request_with_input_and_result(self) -> None:
        spec = CamelChat.client_to_server.methods["send_message"]
        assert spec.kind is MethodKind.REQUEST
        assert spec.py_name == "send_message"
        assert spec.function is ChatServer.send_message
        assert (spec.input_type, spec.result_type) == (SendMessageRequest, SendMessageResponse)
        assert (spec.has_input, spec.has_result) == (True, True)
        assert spec.prefix == b"r:ChatApi.sendMessage:"
        assert repr(spec) == "<MethodSpec request ChatApi.sendMessage>"

    def test_notify(self) -> None:
        spec = CamelChat.client_to_server.methods["mark_as_read"]
        assert spec.kind is MethodKind.NOTIFY
        assert (spec.input_type, spec.result_type) == (str, None)
        assert (spec.has_input, spec.has_result) == (True, False)
        assert spec.prefix == b"m:ChatApi.markAsRead:"

    def test_request_without_input(self) -> None:
        spec = Chat.client_to_server.methods["who_is_there"]
        assert (spec.input_type, spec.result_type) == (None, list[str])
        assert (spec.has_input, spec.has_result) == (False, True)

    def test_request_without_result(self) -> None:
        spec = Chat.client_to_server.methods["leave"]
        assert spec.result_type is None
        assert spec.has_result is False

    def test_declared_and_implicit_errors(self) -> None:
        spec = Chat.client_to_server.methods["send_message"]
        assert spec.errors == {
            "VALIDATION_ERROR": ValidationError,
            "SERVER_ERROR": ServerError,
            "ROUTE_NOT_FOUND": RouteNotFoundError,
            "NOT_AUTHORIZED": NotAuthorizedError,
            "FORBIDDEN": ForbiddenError,
            "TOO_MANY_REQUESTS": TooManyRequestsError,
            "UNAVAILABLE": UnavailableError,
            "ROOM_FULL": RoomFull,
            "BANNED": Banned,
        }
        assert set(spec.error_classes) == set(spec.errors.values())

    def test_every_method_has_the_implicit_errors(self) -> None:
        assert set(IMPLICIT_ERRORS) == {
            ValidationError,
            ServerError,
            RouteNotFoundError,
            NotAuthorizedError,
            ForbiddenError,
            TooManyRequestsError,
            UnavailableError,
        }
        for half in (Chat.client_to_server, Chat.server_to_client):
            for spec in half:
                assert {cls.type: cls for cls in IMPLICIT_ERRORS}.items() <= spec.errors.items()

    @pytest.mark.parametrize(
        ("type_name", "expected"),
        [
            ("ROOM_FULL", RoomFull),
            ("BANNED", Banned),
            ("VALIDATION_ERROR", ValidationError),
            ("NOT_FOUND", NotFoundError),
            ("EXISTS", ExistsError),
            ("NO_SUCH_TYPE", None),
        ],
    )
    def test_error_class_declared_then_standard(
        self, type_name: str, expected: type[ApiError[Any]] | None
    ) -> None:
        assert Chat.client_to_server.methods["send_message"].error_class(type_name) is expected

    @pytest.mark.parametrize(
        ("error", "declared"),
        [
            (RoomFull(data=RoomInfo(seats=8)), True),
            (NotSoFull(data=RoomInfo(seats=8)), True),
            (Banned(), True),
            (ValidationError(data=[]), True),
            (ForbiddenError(), True),
            (NotFoundError(), False),
            (BadRequestError(), False),
        ],
        ids=lambda value: type(value).__name__ if isinstance(value, ApiError) else str(value),
    )
    def test_declares(self, error: ApiError[Any], declared: bool) -> None:
        assert Chat.client_to_server.methods["send_message"].declares(error) is declared

    def test_decode_input(self) -> None:
        spec = CamelChat.client_to_server.methods["send_message"]
        assert spec.decode_input(b'{"text":"hi","channelId":"c"}') == SendMessageRequest("hi", "c")
        with pytest.raises(msgspec.ValidationError, match="length >= 1"):
            spec.decode_input(b'{"text":"","channelId":"c"}')
        with pytest.raises(msgspec.DecodeError):
            spec.decode_input(b"{")

    def test_decode_input_without_input_ignores_the_data(self) -> None:
        assert Chat.client_to_server.methods["who_is_there"].decode_input(b"whatever") is None

    def test_decode_result(self) -> None:
        assert Chat.client_to_server.methods["who_is_there"].decode_result(b'["a"]') == ["a"]
        assert Chat.client_to_server.methods["leave"].decode_result(b"") is None
        with pytest.raises(msgspec.ValidationError):
            Chat.client_to_server.methods["who_is_there"].decode_result(b"[1]")

    @pytest.mark.parametrize(
        ("type_name", "data", "decoded"),
        [
            ("ROOM_FULL", b'{"seats":8}', RoomInfo(seats=8)),
            ("VALIDATION_ERROR", b'[{"path":"a","code":"c","message":"m"}]', [Issue("a", "c", "m")]),
            ("UNKNOWN_TYPE", b'{"any":[1]}', {"any": [1]}),
            ("NOT_FOUND", b'"x"', "x"),
        ],
    )
    def test_error_data_is_decoded_by_the_error_class(
        self, type_name: str, data: bytes, decoded: Any
    ) -> None:
        envelope = ResultEnvelope(success=False, type=type_name, data=msgspec.Raw(data))
        assert error_from_envelope(envelope, Chat.client_to_server.methods["send_message"]).data == decoded

    def test_error_data_of_the_wrong_type_is_left_out(self) -> None:
        envelope = ResultEnvelope(success=False, type="ROOM_FULL", data=msgspec.Raw(b'{"seats":"x"}'))
        error = error_from_envelope(envelope, Chat.client_to_server.methods["send_message"])
        assert type(error).__name__ == "RoomFull"
        assert error.data is None

    def test_decorators_keep_the_stub(self) -> None:
        assert ChatServer.send_message.__doc__ == "Post a message."
        assert ChatServer.send_message.__name__ == "send_message"


class TestContractHalf:
    def test_bind_leaves_out_unimplemented_methods(self) -> None:
        handler = PartialHandler()  # type: ignore[abstract]
        table = Chat.client_to_server.bind(handler)
        assert set(table) == {"ChatApi.send_message", "ChatApi.leave"}
        spec, fn, takes_self = table["ChatApi.leave"]
        assert spec is Chat.client_to_server.methods["leave"]
        assert (fn, takes_self) == (PartialHandler.leave, True)

    def test_bind_a_handler_that_does_not_inherit(self) -> None:
        handler = DuckHandler()
        table = Chat.client_to_server.bind(handler)
        assert list(table) == ["ChatApi.whoIsThere"]
        assert table["ChatApi.whoIsThere"][1:] == (DuckHandler.who_is_there, True)

    def test_bind_shares_one_table_per_class(self) -> None:
        assert Chat.client_to_server.bind(DuckHandler()) is Chat.client_to_server.bind(DuckHandler())

    def test_bind_a_callable_attribute_calls_it_bound(self) -> None:
        class Attribute:
            def __init__(self) -> None:
                self.who_is_there = DuckHandler().who_is_there

        handler = Attribute()
        table = Chat.client_to_server.bind(handler)
        assert table["ChatApi.whoIsThere"][1:] == (handler.who_is_there, False)
        assert Chat.client_to_server.bind(Attribute()) is not table

    def test_bind_nothing(self) -> None:
        assert Chat.client_to_server.bind(object()) == {}

    def test_spec_for(self) -> None:
        half = Chat.client_to_server
        assert half.spec_for(ChatServer.leave) is half.methods["leave"]

    @pytest.mark.parametrize(
        "method",
        [ChatClient.new_message, PartialHandler.leave, print, []],
        ids=["other-half", "impl", "print", "list"],
    )
    def test_spec_for_refuses_other_callables(self, method: Any) -> None:
        with pytest.raises(ContractError, match="is not a method of ChatServer"):
            Chat.client_to_server.spec_for(method)

    async def test_proxy_sends_through_its_caller(self) -> None:
        caller = RecordingCaller()
        half = CamelChat.client_to_server
        proxy = half.proxy(caller, 2.5)
        request_arg = SendMessageRequest("hi", "c")
        assert await proxy.send_message(request_arg) == "answer to ChatApi.sendMessage"
        assert await proxy.who_is_there() == "answer to ChatApi.whoIsThere"
        assert await proxy.mark_as_read("m1") is None
        assert caller.calls == [
            ("request", half.methods["send_message"], request_arg, 2.5),
            ("request", half.methods["who_is_there"], None, 2.5),
            ("notify", half.methods["mark_as_read"], "m1", None),
        ]

    def test_proxy_class(self) -> None:
        proxy = Chat.client_to_server.proxy(RecordingCaller(), None)
        assert type(proxy).__name__ == "ChatServerProxy"
        assert proxy.send_message.__name__ == "send_message"
        assert proxy.send_message.__doc__ == "Post a message."
        assert not hasattr(proxy, "__dict__")


class TestApiError:
    def test_subclass_with_data(self) -> None:
        assert (RoomFull.type, RoomFull.status_code, RoomFull.data_type) == ("ROOM_FULL", 400, RoomInfo)
        assert RoomFull.__doc__ == "The room has no free seat."

    def test_subclass_without_data(self) -> None:
        assert (Banned.type, Banned.status_code, Banned.data_type) == ("BANNED", 403, None)

    def test_subclass_of_a_subclass_inherits(self) -> None:
        assert (NotSoFull.type, NotSoFull.status_code, NotSoFull.data_type) == ("ROOM_FULL", 400, RoomInfo)

    def test_subclass_can_override_the_status_code_only(self) -> None:
        class Teapot(Banned, status_code=418):
            pass

        assert (Teapot.type, Teapot.status_code) == ("BANNED", 418)

    def test_base_defaults(self) -> None:
        assert (ApiError.type, ApiError.status_code, ApiError.data_type) == ("SERVER_ERROR", 500, None)

    def test_instance_attributes(self) -> None:
        error = RoomFull("Room is full", data=RoomInfo(seats=8), ref="abc", timestamp=17)
        assert (error.message, error.data, error.ref, error.timestamp) == (
            "Room is full",
            RoomInfo(8),
            "abc",
            17,
        )
        assert error.args == ("Room is full",)
        assert isinstance(error, GrestwsError)

    def test_instance_defaults(self) -> None:
        error = Banned()
        assert (error.message, error.data, error.ref, error.timestamp) == (None, None, None, None)

    @pytest.mark.parametrize(
        "type_name", ["room_full", "Room-Full", "ROOM FULL", "1ROOM", "_ROOM", "", "RÖÖM"]
    )
    def test_invalid_type_name(self, type_name: str) -> None:
        with pytest.raises(ContractError, match="must match"):

            class Bad(ApiError, type=type_name, status_code=400):
                pass

    def test_type_name_with_trailing_newline(self) -> None:
        with pytest.raises(ContractError, match="must match"):

            class Bad(ApiError, type="ROOM_FULL\n", status_code=400):
                pass

    @pytest.mark.parametrize("type_name", ["A", "ROOM_FULL", "RoomFull", "X9_y"])
    def test_valid_type_name(self, type_name: str) -> None:
        class Good(ApiError, type=type_name, status_code=400):
            pass

        assert Good.type == type_name

    def test_define(self) -> None:
        error_cls = ApiError.define("ROOM_FULL", 400)
        assert error_cls.__name__ == "RoomFullError"
        assert (error_cls.type, error_cls.status_code, error_cls.data_type) == ("ROOM_FULL", 400, None)
        assert error_cls.__doc__ == "ROOM_FULL (400)"
        assert error_cls.__module__ == "grestws.exceptions"
        assert issubclass(error_cls, ApiError)

    def test_define_with_data_and_doc(self) -> None:
        error_cls = ApiError.define("TOO_MANY", 429, data=RoomInfo, doc="Slow down.")
        assert error_cls.__name__ == "TooManyError"
        assert (error_cls.type, error_cls.status_code, error_cls.data_type) == ("TOO_MANY", 429, RoomInfo)
        assert error_cls.__doc__ == "Slow down."
        assert error_cls(data=RoomInfo(1)).data == RoomInfo(1)

    def test_defined_error_works_in_a_contract(self) -> None:
        error_cls = ApiError.define("QUOTA", 429, data=RoomInfo)

        spec = MethodSpec("Api", _errors_stub(error_cls))
        assert spec.errors["QUOTA"] is error_cls
        envelope = ResultEnvelope(success=False, type="QUOTA", data=msgspec.Raw(b'{"seats":2}'))
        assert error_from_envelope(envelope, spec).data == RoomInfo(2)

    def test_define_refuses_a_bad_type(self) -> None:
        with pytest.raises(ContractError, match="must match"):
            ApiError.define("room_full", 400)

    @pytest.mark.parametrize(
        ("error", "text"),
        [
            (Banned(), "BANNED (403)"),
            (Banned("Go away"), "BANNED (403): Go away"),
            (ServerError(ref="0123abcd"), "SERVER_ERROR (500) [ref 0123abcd]"),
            (NotFoundError("No room", ref="r1"), "NOT_FOUND (404): No room [ref r1]"),
            (RoomFull("Full", data=RoomInfo(8)), "ROOM_FULL (400): Full"),
            (
                ValidationError("Invalid input", data=[Issue("a", "b", "c")]),
                "VALIDATION_ERROR (422): Invalid input: a: c",
            ),
        ],
        ids=lambda value: value if isinstance(value, str) else type(value).__name__,
    )
    def test_str(self, error: ApiError[Any], text: str) -> None:
        assert str(error) == text

    def test_repr(self) -> None:
        assert repr(RoomFull("Full", data=RoomInfo(8))) == "RoomFull('Full', data=RoomInfo(seats=8))"
        assert repr(Banned()) == "Banned(None, data=None)"


class TestStandardErrors:
    def test_content(self) -> None:
        assert {name: (cls, cls.status_code) for name, cls in STANDARD_ERRORS.items()} == {
            "VALIDATION_ERROR": (ValidationError, 422),
            "NOT_AUTHORIZED": (NotAuthorizedError, 401),
            "FORBIDDEN": (ForbiddenError, 403),
            "BAD_REQUEST": (BadRequestError, 400),
            "NOT_FOUND": (NotFoundError, 404),
            "EXISTS": (ExistsError, 409),
            "PAYLOAD_TOO_LARGE": (PayloadTooLargeError, 413),
            "ROUTE_NOT_FOUND": (RouteNotFoundError, 404),
            "TOO_MANY_REQUESTS": (TooManyRequestsError, 429),
            "SERVER_ERROR": (ServerError, 500),
            "UNAVAILABLE": (UnavailableError, 503),
        }

    @pytest.mark.parametrize("name", sorted(STANDARD_ERRORS))
    def test_type_matches_key_and_data_type(self, name: str) -> None:
        cls = STANDARD_ERRORS[name]
        assert cls.type == name
        assert cls.data_type == {"VALIDATION_ERROR": list[Issue], "TOO_MANY_REQUESTS": RetryAfter | None}.get(
            name
        )


class TestOtherErrors:
    @pytest.mark.parametrize(
        ("error", "text"),
        [
            (ConnectionClosedError(), "connection closed"),
            (ConnectionClosedError(1000), "connection closed with code 1000"),
            (ConnectionClosedError(1000, ""), "connection closed with code 1000"),
            (
                ConnectionClosedError(4001, "Handshake failed"),
                "connection closed with code 4001: Handshake failed",
            ),
            (
                RequestTimeoutError("ChatApi.sendMessage", 30.0),
                "ChatApi.sendMessage: no response within 30 s",
            ),
            (RequestTimeoutError("Api.x", 0.25), "Api.x: no response within 0.25 s"),
        ],
        ids=str,
    )
    def test_str(self, error: GrestwsError, text: str) -> None:
        assert str(error) == text

    def test_attributes(self) -> None:
        closed = ConnectionClosedError(4000, "Invalid query parameters")
        assert (closed.code, closed.reason) == (4000, "Invalid query parameters")
        timeout = RequestTimeoutError("Api.x", 1.5)
        assert (timeout.path, timeout.timeout) == ("Api.x", 1.5)

    @pytest.mark.parametrize(
        ("cls", "builtin"),
        [
            (ContractError, TypeError),
            (InvalidStateError, RuntimeError),
            (FrameError, ValueError),
            (ConnectError, ConnectionError),
            (ConnectionClosedError, ConnectionError),
            (RequestTimeoutError, TimeoutError),
            (HandshakeTimeoutError, TimeoutError),
        ],
    )
    def test_misuse_errors_also_subclass_the_builtin(
        self, cls: type[GrestwsError], builtin: type[Exception]
    ) -> None:
        assert issubclass(cls, GrestwsError)
        assert issubclass(cls, builtin)


def _errors_stub(error_cls: type[ApiError[Any]]) -> Any:
    @request(errors=[error_cls])
    async def call(self: Any) -> None: ...

    return call


class Tree(msgspec.Struct):
    children: list[Tree]


class TestNesting:
    """Which types let a payload's nesting through to the handler (so it is checked)."""

    @pytest.mark.parametrize(
        ("tp", "nests"),
        [
            (int, False),
            (list[str], False),
            (dict[str, int], False),
            (RoomInfo, False),
            (list[RoomInfo], False),
            (msgspec.Raw, False),
            (Any, True),
            (list[Any], True),
            (dict[str, Any], True),
            (RoomInfo | dict[str, Any], True),
            (Tree, True),
        ],
    )
    def test_nests_freely(self, tp: Any, nests: bool) -> None:
        assert nests_freely(tp) is nests
