"""``str()`` of errors: a ValidationError shows its first issue, bounded, since a peer chooses
the issues; every other error reads as before."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

import msgspec
import pytest

import grestws
from grestws import ApiError, Issue, ValidationError
from grestws.contract.envelopes import error_from_envelope
from grestws.protocol.frames import ErrorContext, ResultEnvelope
from tests.conftest import StartServer


def issue(path: str, message: str) -> Issue:
    return Issue(path, "invalid_value", message)


class TestValidationErrorStr:
    def test_shows_the_path_and_message_of_the_first_issue(self) -> None:
        error = ValidationError(
            "Invalid input",
            data=[
                issue("text", "Expected `str` of length >= 1"),
                issue("tags.0", "Expected `str`, got `int`"),
                issue("", "Object contains unknown field `x`"),
            ],
        )
        expected = "VALIDATION_ERROR (422): Invalid input: text: Expected `str` of length >= 1 (and 2 more)"
        assert str(error) == expected

    def test_one_issue_says_nothing_more(self) -> None:
        error = ValidationError("Invalid input", data=[issue("items.0.name", "Expected `str`, got `int`")])
        assert str(error) == "VALIDATION_ERROR (422): Invalid input: items.0.name: Expected `str`, got `int`"

    def test_an_issue_at_the_top_level_has_no_path(self) -> None:
        error = ValidationError("Invalid input", data=[issue("", "Nested too deep to decode")])
        assert str(error) == "VALIDATION_ERROR (422): Invalid input: Nested too deep to decode"

    def test_without_a_message_the_issue_follows_the_type(self) -> None:
        error = ValidationError(data=[issue("text", "Expected `str`")], ref="r1")
        assert str(error) == "VALIDATION_ERROR (422): text: Expected `str` [ref r1]"

    def test_the_ref_stays_last(self) -> None:
        error = ValidationError("Invalid input", data=[issue("a", "b"), issue("c", "d")], ref="0123abcd")
        assert str(error) == "VALIDATION_ERROR (422): Invalid input: a: b (and 1 more) [ref 0123abcd]"

    @pytest.mark.parametrize("data", [[], None, ["not an issue"]], ids=["empty", "none", "not-issues"])
    def test_without_issues_only_the_message(self, data: Any) -> None:
        assert str(ValidationError("Invalid input", data=data)) == "VALIDATION_ERROR (422): Invalid input"

    def test_message_and_data_are_kept_as_they_are(self) -> None:
        issues = [issue("p" * 1000, "m" * 1000), issue("a", "b")]
        error = ValidationError("Invalid input", data=issues)
        str(error)
        assert error.message == "Invalid input"
        assert error.data == issues
        assert error.data[0].path == "p" * 1000

    def test_long_paths_and_messages_are_cut_short(self) -> None:
        error = ValidationError("Invalid input", data=[issue("p" * 10_000, "m" * 10_000)] * 10_000)
        text = str(error)
        assert len(text) < 300
        assert text.startswith("VALIDATION_ERROR (422): Invalid input: ppp")
        assert text.endswith("m… (and 9999 more)")
        assert "p…: mmm" in text

    def test_a_path_or_message_at_the_limit_is_whole(self) -> None:
        error = ValidationError(data=[issue("p" * 80, "m" * 160)])
        assert str(error) == f"VALIDATION_ERROR (422): {'p' * 80}: {'m' * 160}"

    def test_control_characters_are_escaped(self) -> None:
        error = ValidationError("Invalid input", data=[issue("a\nb", "line\r\nFAKE LOG LINE\x1b[31m")])
        text = str(error)
        assert not any(char in text for char in "\n\r\x1b")
        assert text == "VALIDATION_ERROR (422): Invalid input: a\\nb: line\\r\\nFAKE LOG LINE\\x1b[31m"

    def test_non_ascii_text_reads_as_itself(self) -> None:
        error = ValidationError(data=[issue("título", "Attendu « str »")])
        assert str(error) == "VALIDATION_ERROR (422): título: Attendu « str »"

    def test_an_error_from_the_peer_shows_its_issues(self) -> None:
        data = msgspec.json.encode([issue("text", "Expected `str` of length >= 1")])
        envelope = ResultEnvelope(
            success=False,
            type="VALIDATION_ERROR",
            status_code=422,
            data=msgspec.Raw(data),
            context=ErrorContext(display_message="Invalid input"),
        )
        error = error_from_envelope(envelope)
        assert isinstance(error, ValidationError)
        assert error.remote
        assert str(error) == "VALIDATION_ERROR (422): Invalid input: text: Expected `str` of length >= 1"

    def test_an_error_from_the_peer_with_bad_data_shows_the_message(self) -> None:
        envelope = ResultEnvelope(
            success=False,
            type="VALIDATION_ERROR",
            status_code=422,
            data=msgspec.Raw(b'{"not":"issues"}'),
            context=ErrorContext(display_message="Invalid input"),
        )
        assert str(error_from_envelope(envelope)) == "VALIDATION_ERROR (422): Invalid input"


class TestMessagesFromThePeer:
    def test_a_long_message_from_the_peer_is_cut_short_and_escaped(self) -> None:
        context = ErrorContext(display_message="x\n" * 5000)
        envelope = ResultEnvelope(success=False, type="BAD_REQUEST", status_code=400, context=context)
        error = error_from_envelope(envelope)
        text = str(error)
        assert len(text) < 600
        assert "\n" not in text
        assert text.endswith("…")
        assert error.message == "x\n" * 5000  # the message itself is kept whole

    def test_a_local_message_is_shown_whole(self) -> None:
        assert str(grestws.BadRequestError("y" * 1000)) == "BAD_REQUEST (400): " + "y" * 1000


class Banned(ApiError, type="BANNED", status_code=403):
    """An application error without data."""


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (grestws.NotAuthorizedError("Invalid token"), "NOT_AUTHORIZED (401): Invalid token"),
        (grestws.ForbiddenError(), "FORBIDDEN (403)"),
        (grestws.ServerError(ref="0123abcd"), "SERVER_ERROR (500) [ref 0123abcd]"),
        (
            grestws.TooManyRequestsError("Slow down", data=grestws.RetryAfter(250)),
            "TOO_MANY_REQUESTS (429): Slow down",
        ),
        (Banned("Go away", ref="r1"), "BANNED (403): Go away [ref r1]"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_other_errors_read_as_before(error: ApiError[Any], text: str) -> None:
    assert str(error) == text


class Note(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1)]


class NotesServer(Protocol):
    @grestws.request
    async def add(self, note: Note) -> int: ...


class NotesClient(Protocol):
    @grestws.notify
    async def nothing(self) -> None: ...


Notes = grestws.SocketContract("Notes", client_to_server=NotesServer, server_to_client=NotesClient)


class NotesHandler(NotesServer):
    def __init__(self, conn: grestws.ServerConnection[NotesClient]) -> None:
        pass

    async def add(self, note: Note) -> int:
        return len(note.text)


async def test_a_caller_reads_what_was_invalid(start_server: StartServer) -> None:
    app = grestws.App()
    app.add(Notes.at("/notes"), NotesHandler)
    server = await start_server(app)
    async with grestws.connect(server.url, Notes.at("/notes")) as client:
        with pytest.raises(ValidationError) as caught:
            await client.outgoing.add(Note(""))
    assert str(caught.value) == "VALIDATION_ERROR (422): Invalid input: text: Expected `str` of length >= 1"
    assert caught.value.message == "Invalid input"
