"""The testkit's partial matching: :func:`mismatches` and :func:`assert_matches`."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple
from unittest.mock import ANY

import msgspec
import pytest

from grestws.testkit import assert_matches, mismatches
from grestws.testkit.matching import MAX_LINES, shown


class Author(msgspec.Struct, rename="camel"):
    user_id: str
    display_name: str


class Post(msgspec.Struct, rename="camel"):
    post_id: int
    text: str
    author: Author
    tags: list[str] = msgspec.field(default_factory=list)
    extra: dict[str, int] = msgspec.field(default_factory=dict)


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Segment:
    start: Point
    end: Point


class Plain:
    def __init__(self, name: str) -> None:
        self.name = name


class Slotted:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Pair(NamedTuple):
    left: int
    right: int


def a_post() -> Post:
    return Post(
        post_id=7,
        text="hello",
        author=Author(user_id="ann", display_name="Ann"),
        tags=["a", "b"],
        extra={"likes": 3},
    )


class TestDicts:
    def test_an_empty_dict_matches_any_dict(self) -> None:
        assert mismatches({"a": 1}, {}) == []

    def test_partial_match_ignores_other_keys(self) -> None:
        assert mismatches({"a": 1, "b": 2, "c": [3]}, {"a": 1}) == []

    def test_a_different_value_is_one_line_with_its_path(self) -> None:
        assert mismatches({"a": 1, "b": 2}, {"a": 1, "b": 3}) == ["$.b: expected 3, got 2"]

    def test_a_missing_key(self) -> None:
        assert mismatches({"a": 1}, {"b": None}) == ["$.b: missing (expected None)"]

    def test_a_key_that_is_not_an_identifier_is_quoted(self) -> None:
        assert mismatches({"two words": 1, 3: "x"}, {"two words": 2, 3: "y"}) == [
            "$['two words']: expected 2, got 1",
            "$[3]: expected 'y', got 'x'",
        ]

    def test_nested_dicts_and_lists(self) -> None:
        actual = {"a": {"b": [{"c": 1}, {"c": 2}]}}
        assert mismatches(actual, {"a": {"b": [{"c": 1}, {}]}}) == []
        assert mismatches(actual, {"a": {"b": [{"c": 1}, {"c": 3}]}}) == ["$.a.b[1].c: expected 3, got 2"]

    def test_a_dict_against_something_without_fields(self) -> None:
        assert mismatches(5, {"a": 1}) == ["$: expected an object with fields a, got 5"]
        assert mismatches([1], {"a": 1}) == ["$: expected an object with fields a, got [1]"]

    def test_every_mismatch_is_listed(self) -> None:
        problems = mismatches({"a": 1, "b": 2}, {"a": 0, "b": 0, "c": 0})
        assert problems == [
            "$.a: expected 0, got 1",
            "$.b: expected 0, got 2",
            "$.c: missing (expected 0)",
        ]


class TestStructs:
    def test_python_field_names(self) -> None:
        assert mismatches(a_post(), {"post_id": 7, "author": {"display_name": "Ann"}}) == []

    def test_wire_names(self) -> None:
        assert mismatches(a_post(), {"postId": 7, "author": {"displayName": "Ann", "userId": "ann"}}) == []

    def test_a_mismatch_is_reported_under_the_key_the_test_used(self) -> None:
        assert mismatches(a_post(), {"postId": 8}) == ["$.postId: expected 8, got 7"]
        assert mismatches(a_post(), {"post_id": 8}) == ["$.post_id: expected 8, got 7"]

    def test_an_unknown_field_is_missing(self) -> None:
        assert mismatches(a_post(), {"likes": 3}) == ["$.likes: missing (expected 3)"]

    def test_nested_struct_lists_and_dicts(self) -> None:
        expected = {"author": {"userId": "bob"}, "tags": ["a", "c"], "extra": {"likes": 4, "shares": 0}}
        assert mismatches(a_post(), expected) == [
            "$.author.userId: expected 'bob', got 'ann'",
            "$.tags[1]: expected 'c', got 'b'",
            "$.extra.likes: expected 4, got 3",
            "$.extra.shares: missing (expected 0)",
        ]

    def test_an_expected_struct_must_match_in_every_field(self) -> None:
        assert mismatches(a_post(), a_post()) == []
        other = a_post()
        other.author = Author(user_id="ann", display_name="Annie")
        other.tags = []
        assert mismatches(a_post(), other) == [
            "$.author.display_name: expected 'Annie', got 'Ann'",
            "$.tags: expected 0 items, got 2: ['a', 'b']",
        ]

    def test_an_expected_struct_inside_a_dict(self) -> None:
        assert mismatches(a_post(), {"author": Author(user_id="ann", display_name="Ann")}) == []
        assert mismatches(a_post(), {"author": Author(user_id="x", display_name="Ann")}) == [
            "$.author.user_id: expected 'x', got 'ann'"
        ]

    def test_an_expected_struct_against_a_dict_of_python_names(self) -> None:
        assert mismatches({"user_id": "ann", "display_name": "Ann"}, Author("ann", "Ann")) == []

    def test_an_expected_struct_against_something_without_fields(self) -> None:
        assert mismatches(3, Author("ann", "Ann")) == [
            "$: expected Author(user_id='ann', display_name='Ann'), got 3"
        ]


class TestListsAndTuples:
    def test_items_match_in_order(self) -> None:
        assert mismatches([1, {"a": 2}], [1, {}]) == []
        assert mismatches((1, 2), [1, 2]) == []
        assert mismatches([1, 2], (1, 2)) == []

    def test_length_mismatch(self) -> None:
        assert mismatches([1, 2, 3], [1, 2]) == ["$: expected 2 items, got 3: [1, 2, 3]"]
        assert mismatches({"a": []}, {"a": [1]}) == ["$.a: expected 1 items, got 0: []"]

    def test_an_item_mismatch(self) -> None:
        assert mismatches([1, 2, 3], [1, 5, 3]) == ["$[1]: expected 5, got 2"]

    def test_a_list_against_something_else(self) -> None:
        assert mismatches("ab", ["a", "b"]) == ["$: expected a list of 2, got 'ab'"]
        assert mismatches({"a": 1}, [1]) == ["$: expected a list of 1, got {'a': 1}"]


class TestClassesAndSpecialValues:
    def test_a_class_matches_its_instances(self) -> None:
        assert mismatches({"id": "x7", "n": 3}, {"id": str, "n": int}) == []
        assert mismatches(a_post(), {"author": Author, "tags": list}) == []

    def test_a_class_mismatch(self) -> None:
        assert mismatches({"id": 7}, {"id": str}) == ["$.id: expected an instance of str, got 7"]
        assert mismatches(a_post(), Point) == [f"$: expected an instance of Point, got {a_post()!r}"]

    def test_a_class_against_a_class_is_equality(self) -> None:
        assert mismatches({"kind": int}, {"kind": int}) == []
        assert mismatches({"kind": int}, {"kind": str}) == [
            "$.kind: expected <class 'str'>, got <class 'int'>"
        ]

    def test_mock_any(self) -> None:
        assert mismatches({"id": "x", "at": 1234}, {"id": ANY, "at": ANY}) == []
        assert mismatches(a_post(), {"author": ANY, "tags": [ANY, "b"]}) == []
        assert mismatches({"a": 1}, {"b": ANY}) == ["$.b: missing (expected <ANY>)"]

    def test_pytest_approx(self) -> None:
        assert mismatches({"ratio": 0.1 + 0.2}, {"ratio": pytest.approx(0.3)}) == []

    def test_an_equality_that_raises_is_a_mismatch(self) -> None:
        class Touchy:
            def __eq__(self, other: object) -> bool:
                raise RuntimeError("no")

            __hash__ = object.__hash__

        [line] = mismatches({"a": 1}, {"a": Touchy()})
        assert line.startswith("$.a: expected <")

    def test_none(self) -> None:
        assert mismatches(None, None) == []
        assert mismatches({"a": None}, {"a": None}) == []
        assert mismatches({"a": 0}, {"a": None}) == ["$.a: expected None, got 0"]


class TestObjects:
    def test_dataclass_as_actual(self) -> None:
        assert mismatches(Point(1, 2), {"x": 1}) == []
        assert mismatches(Segment(Point(1, 2), Point(3, 4)), {"end": {"y": 5}}) == [
            "$.end.y: expected 5, got 4"
        ]

    def test_dataclass_as_expected(self) -> None:
        assert mismatches(Point(1, 2), Point(1, 2)) == []
        assert mismatches({"x": 1, "y": 3, "z": 0}, Point(1, 2)) == ["$.y: expected 2, got 3"]
        assert mismatches(Segment(Point(0, 0), Point(3, 4)), Segment(Point(0, 0), Point(3, 5))) == [
            "$.end.y: expected 5, got 4"
        ]

    def test_a_dataclass_class_is_a_class(self) -> None:
        assert mismatches({"p": Point(1, 2)}, {"p": Point}) == []

    def test_an_object_with_attributes(self) -> None:
        assert mismatches(Plain("ann"), {"name": "ann"}) == []
        assert mismatches(Plain("ann"), {"name": "bob", "age": 3}) == [
            "$.name: expected 'bob', got 'ann'",
            "$.age: missing (expected 3)",
        ]

    def test_an_object_with_slots(self) -> None:
        assert mismatches(Slotted("ann"), {"name": "ann"}) == []
        assert mismatches(Pair(1, 2), {"left": 1}) == []


class TestMessages:
    def test_assert_matches_passes_silently(self) -> None:
        assert_matches(a_post(), {"text": "hello", "author": {"userId": "ann"}})

    def test_assert_matches_lists_every_mismatch_and_the_actual_value(self) -> None:
        with pytest.raises(AssertionError) as caught:
            assert_matches(a_post(), {"text": "bye", "author": {"userId": "bob"}})
        assert str(caught.value) == "\n".join(
            [
                "does not match:",
                "  $.text: expected 'bye', got 'hello'",
                "  $.author.userId: expected 'bob', got 'ann'",
                f"actual: {a_post()!r}",
            ]
        )

    def test_at_most_max_lines(self) -> None:
        count = MAX_LINES + 5
        actual = {f"k{i}": i for i in range(count)}
        problems = mismatches(actual, {f"k{i}": -1 for i in range(count)})
        assert len(problems) == MAX_LINES + 1
        assert problems[0] == "$.k0: expected -1, got 0"
        assert problems[MAX_LINES - 1] == f"$.k{MAX_LINES - 1}: expected -1, got {MAX_LINES - 1}"
        assert problems[-1] == "... and 5 more"

    def test_exactly_max_lines_has_no_more_line(self) -> None:
        actual = list(range(MAX_LINES))
        problems = mismatches(actual, [-1] * MAX_LINES)
        assert len(problems) == MAX_LINES
        assert not any(line.startswith("...") for line in problems)

    def test_huge_values_are_cut(self) -> None:
        huge = "x" * 100_000
        [line] = mismatches({"text": huge}, {"text": "short"})
        assert line.startswith("$.text: expected 'short', got 'xxx")
        assert "..." in line
        assert len(line) < 300

        many = list(range(10_000))
        [line] = mismatches(many, [0])
        assert line.startswith("$: expected 1 items, got 10000: [0, 1, 2")
        assert len(line) < 200

    def test_the_actual_value_of_a_failure_is_cut_too(self) -> None:
        with pytest.raises(AssertionError) as caught:
            assert_matches({"text": "y" * 100_000, "n": 1}, {"n": 2})
        assert len(str(caught.value)) < 500

    def test_shown(self) -> None:
        assert shown("short") == "'short'"
        assert len(shown("z" * 10_000)) < 200
        assert shown(list(range(100))).endswith("...]")
        deep: object = 0
        for _ in range(10):
            deep = [deep]
        assert "..." in shown(deep)
