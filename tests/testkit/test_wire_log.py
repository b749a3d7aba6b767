"""The testkit's wire log on its own: bounded, cut, rendered."""

from __future__ import annotations

from grestws.testkit import WireLog
from grestws.testkit.wire import KEPT, SHOWN, Direction


def test_an_empty_log() -> None:
    log = WireLog("ann")
    assert len(log) == 0
    assert log.dropped == 0
    assert log.render() == "wire log of ann (-> sent, <- received):\n   (nothing)"


def test_frames_in_order_with_their_direction() -> None:
    log = WireLog("ann")
    log.note(Direction.SENT, b"h:::{}")
    log.note(Direction.RECEIVED, "k:::null")
    log.note(Direction.CLOSED, "closed 1000 ''")
    assert list(log) == [
        (Direction.SENT, "h:::{}"),
        (Direction.RECEIVED, "k:::null"),
        (Direction.CLOSED, "closed 1000 ''"),
    ]
    assert log.render() == "\n".join(
        [
            "wire log of ann (-> sent, <- received):",
            "   -> h:::{}",
            "   <- k:::null",
            "   xx closed 1000 ''",
        ]
    )


def test_bytes_that_are_not_utf8_are_shown_escaped() -> None:
    log = WireLog("ann")
    log.note(Direction.RECEIVED, b"m:X.y::\xff\xfe")
    assert list(log) == [(Direction.RECEIVED, "m:X.y::\\xff\\xfe")]


def test_only_the_latest_frames_are_kept() -> None:
    log = WireLog("ann")
    for i in range(KEPT + 10):
        log.note(Direction.SENT, f"frame {i}")
    assert len(log) == KEPT
    assert log.dropped == 10
    assert next(iter(log)) == (Direction.SENT, "frame 10")
    lines = log.render().splitlines()
    assert lines[1] == "   ... 10 earlier frames"
    assert lines[2] == "   -> frame 10"
    assert lines[-1] == f"   -> frame {KEPT + 9}"
    assert len(lines) == KEPT + 2


def test_long_frames_are_cut() -> None:
    log = WireLog("ann")
    log.note(Direction.SENT, "a" * SHOWN)
    log.note(Direction.SENT, "b" * (SHOWN + 1))
    log.note(Direction.RECEIVED, "c" * 100_000)
    (_, exact), (_, one_more), (_, huge) = list(log)
    assert exact == "a" * SHOWN
    assert one_more == "b" * SHOWN + "... (1 more characters)"
    assert huge == "c" * SHOWN + f"... ({100_000 - SHOWN} more characters)"


def test_render_the_last_frames() -> None:
    log = WireLog("ann")
    for i in range(10):
        log.note(Direction.SENT, f"frame {i}")
    assert log.render(last=3).splitlines() == [
        "wire log of ann (-> sent, <- received):",
        "   ... 7 earlier frames",
        "   -> frame 7",
        "   -> frame 8",
        "   -> frame 9",
    ]
    assert log.render(last=10) == log.render()
    assert log.render(last=50) == log.render()


def test_render_the_last_frames_counts_those_dropped_too() -> None:
    log = WireLog("ann")
    for i in range(KEPT + 5):
        log.note(Direction.SENT, f"frame {i}")
    lines = log.render(last=2).splitlines()
    assert lines[1:] == [
        f"   ... {KEPT + 3} earlier frames",
        f"   -> frame {KEPT + 3}",
        f"   -> frame {KEPT + 4}",
    ]


def test_render_no_frame() -> None:
    log = WireLog("ann")
    for i in range(3):
        log.note(Direction.SENT, f"frame {i}")
    assert log.render(last=0).splitlines() == [
        "wire log of ann (-> sent, <- received):",
        "   ... 3 earlier frames",
        "   (nothing)",
    ]
