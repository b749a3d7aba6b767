"""Turning raw runs into medians, ratios, a table and a chart.

A ratio is always ``peer ÷ baseline`` of one metric, taken per repeat (both numbers come
from the same repeat, on the same event loop) and then summarised, so drift between
repeats cancels out. For a rate, more than 1.0 is better than the baseline; for a time or
a size, less is.

The peers served by uvicorn (:data:`UVICORN`) get a table of their own per loop, beside
the main one: their numbers, their ratios to websockets, ``grestws-uvicorn ÷
socketio-uvicorn`` (both frameworks on the same server), and ``grestws-uvicorn ÷
grestws``, ``socketio-uvicorn ÷ socketio`` (what moving to uvicorn changes for each).
Plain picows is a second bare transport in the main table (``picows ÷ websockets``);
grestws on picows (``grestws-picows``) gets a table of its own, against websockets, picows
and ``grestws`` (the same App on websockets), with the targets of :data:`PICOWS_TARGETS`.

With ``--baseline`` an earlier grestws runs as the peer ``grestws@base``, and
:func:`summary` adds, per metric and loop, how ``grestws ÷ websockets`` changed against
``grestws@base ÷ websockets`` (``"change"``), in percent: ``change_pct`` compares the two
medians (the numbers the table shows), ``per_repeat_pct`` summarises ``grestws ÷
grestws@base - 1`` within each repeat (websockets cancels out of the per-repeat ratio of
ratios), and ``within`` says whether the change is no worse than
:data:`ALLOWED_CHANGE_PCT` in the metric's bad direction (a drop for a rate, a rise for a
time, a CPU cost or a size).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.common import Summary, summarize

__all__ = (
    "ALLOWED_CHANGE_PCT",
    "METRICS",
    "PICOWS_RATIOS",
    "PICOWS_TARGETS",
    "RATIOS",
    "UVICORN",
    "UVICORN_RATIOS",
    "Metric",
    "changes_markdown",
    "changes_text",
    "markdown",
    "summary",
    "text_table",
    "write_chart",
)

BASELINE = "websockets"
CURRENT = "grestws"
PREVIOUS = "grestws@base"
"""The earlier grestws that ``--baseline`` adds (see :mod:`benchmarks.baseline`)."""
ALLOWED_CHANGE_PCT = 3.0
"""How much worse ``grestws ÷ websockets`` may get against ``grestws@base ÷ websockets``."""
CHANGE_TITLE = f"{CURRENT} vs {PREVIOUS}: ratio change in %"


@dataclass(frozen=True)
class Metric:
    """One number a shape reports, and how to read it."""

    shape: str
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: float | None = None
    """What grestws ÷ websockets should reach (at least for a rate, at most otherwise)."""
    digits: int = 0

    @property
    def id(self) -> str:
        return f"{self.shape}.{self.key}"


METRICS = (
    Metric("sequential", "rate", "sequential", "calls/s", True, 0.85),
    Metric("sequential", "p50_us", "sequential p50 latency", "µs", False, digits=1),
    Metric("sequential", "p99_us", "sequential p99 latency", "µs", False, digits=1),
    Metric("sequential", "server_cpu_us", "sequential server CPU", "µs/call", False, digits=1),
    Metric("sequential", "client_cpu_us", "sequential client CPU", "µs/call", False, digits=1),
    Metric("pipelined", "rate", "pipelined", "calls/s", True, 0.80),
    Metric("pipelined", "server_cpu_us", "pipelined server CPU", "µs/call", False, digits=1),
    Metric("pipelined", "client_cpu_us", "pipelined client CPU", "µs/call", False, digits=1),
    Metric("many", "rate", "many connections", "calls/s", True, 0.80),
    Metric("crowd", "rate", "1,000 connections", "calls/s", True),
    Metric("crowd", "p50_us", "1,000 connections p50 latency", "µs", False),
    Metric("crowd", "p99_us", "1,000 connections p99 latency", "µs", False, 1.2),
    Metric("fanout-100", "rate", "fan-out, 100 clients", "deliveries/s", True, 0.95),
    Metric("fanout", "rate", "fan-out", "deliveries/s", True, 0.95),
    Metric("fanout", "server_cpu_us", "fan-out server CPU", "µs/delivery", False, digits=1),
    Metric("fanout", "server_user_us", "fan-out server CPU in user space", "µs/delivery", False, digits=1),
    Metric("fanout", "client_cpu_us", "fan-out client CPU", "µs/delivery", False, digits=1),
    Metric("fanout", "client_user_us", "fan-out client CPU in user space", "µs/delivery", False, digits=1),
    Metric("fanout-5000", "rate", "fan-out, 5,000 clients", "deliveries/s", True, 0.95),
    Metric("large", "rate", "large payload", "calls/s", True),
    Metric("large", "p50_us", "large payload p50 latency", "µs", False, digits=1),
    Metric("payload-100b", "rate", "100 B document", "calls/s", True),
    Metric("payload-100b", "p50_us", "100 B document p50 latency", "µs", False, digits=1),
    Metric("payload-100b", "p99_us", "100 B document p99 latency", "µs", False, digits=1),
    Metric("payload-10kb", "rate", "10 KB document", "calls/s", True, 0.95),
    Metric("payload-10kb", "p50_us", "10 KB document p50 latency", "µs", False, digits=1),
    Metric("payload-10kb", "p99_us", "10 KB document p99 latency", "µs", False, digits=1),
    Metric("payload-1mb", "rate", "1 MB document", "calls/s", True, 0.80, digits=1),
    Metric("payload-1mb", "p50_us", "1 MB document p50 latency", "µs", False),
    Metric("payload-1mb", "p99_us", "1 MB document p99 latency", "µs", False),
    Metric("memory", "kb_per_conn", "memory per idle connection", "KB", False, 1.3, digits=1),
)

PICOWS = "picows"
GRESTWS_PICOWS = "grestws-picows"
RATIOS = (
    (PICOWS, "websockets"),
    ("socketio", "websockets"),
    ("grestws", "websockets"),
    (PREVIOUS, "websockets"),
    ("grestws", "socketio"),
)
"""The ratios of the main table, as (numerator peer, denominator peer), when both peers ran."""
GRESTWS_UVICORN = "grestws-uvicorn"
SOCKETIO_UVICORN = "socketio-uvicorn"
UVICORN = (GRESTWS_UVICORN, SOCKETIO_UVICORN)
"""The peers served by uvicorn: they have a table of their own."""
UVICORN_RATIOS = (
    (SOCKETIO_UVICORN, "websockets"),
    (GRESTWS_UVICORN, "websockets"),
    (GRESTWS_UVICORN, SOCKETIO_UVICORN),
    (GRESTWS_UVICORN, "grestws"),
    (SOCKETIO_UVICORN, "socketio"),
)
"""The ratios of the uvicorn table, when both peers ran."""
GRESTWS_METRICS = "grestws-metrics"
GRESTWS_TRACED = "grestws-traced"
OBSERVED = (GRESTWS_METRICS, GRESTWS_TRACED)
"""The peers with metrics (and tracing) on: a table of their own, against ``grestws``."""
OBSERVED_RATIOS = ((GRESTWS_METRICS, CURRENT), (GRESTWS_TRACED, CURRENT))
OBSERVED_TARGET = 0.90
"""What ``grestws-metrics ÷ grestws`` should reach for the rates: at most 10 % slower."""
ON_PICOWS = (GRESTWS_PICOWS,)
"""The peers on grestws's picows transport: a table of their own, against ``grestws``."""
PICOWS_RATIOS = (
    (GRESTWS_PICOWS, "websockets"),
    (GRESTWS_PICOWS, PICOWS),
    (GRESTWS_PICOWS, CURRENT),
)
PICOWS_TARGETS = {"sequential.rate": 1.5, "pipelined.rate": 1.5, "fanout.rate": 1.5}
"""What ``grestws-picows ÷ grestws`` should reach, by metric id: what the picows transport
should gain over websockets."""


def _ratio_name(pair: tuple[str, str]) -> str:
    return f"{pair[0]}/{pair[1]}"


def summary(runs: Iterable[Mapping[str, Any]], loops: Sequence[str], peers: Sequence[str]) -> dict[str, Any]:
    """``{loop: {metric id: {"peers": {peer: Summary}, "ratios": {"a/b": Summary}}}}``.

    With both ``grestws`` and ``grestws@base`` among ``peers``, each entry also has
    ``"change"`` (see the module's docstring).
    """
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    for run in runs:
        result = run.get("result")
        if result is None:
            continue
        for metric in METRICS:
            if run["shape"] == metric.shape and metric.key in result:
                key = (run["loop"], metric.id, run["peer"])
                values.setdefault(key, {})[run["repeat"]] = float(result[metric.key])
    out: dict[str, Any] = {}
    for loop in loops:
        per_loop: dict[str, Any] = {}
        for metric in METRICS:
            peer_values = {peer: values.get((loop, metric.id, peer), {}) for peer in peers}
            entry = {
                "peers": {peer: summarize(list(v.values())) for peer, v in peer_values.items()},
                "ratios": {},
            }
            for top, bottom in (*RATIOS, *UVICORN_RATIOS, *OBSERVED_RATIOS, *PICOWS_RATIOS):
                if top in peer_values and bottom in peer_values:
                    a, b = peer_values[top], peer_values[bottom]
                    ratios = [a[r] / b[r] for r in a.keys() & b.keys() if b[r]]
                    entry["ratios"][_ratio_name((top, bottom))] = summarize(ratios)
            if CURRENT in peer_values and PREVIOUS in peer_values:
                entry["change"] = _change(
                    metric, entry["ratios"], peer_values[CURRENT], peer_values[PREVIOUS]
                )
            if any(entry["peers"].values()):
                per_loop[metric.id] = entry
        out[loop] = per_loop
    return out


def _change(
    metric: Metric,
    ratios: Mapping[str, Summary | None],
    current: Mapping[int, float],
    previous: Mapping[int, float],
) -> dict[str, Any]:
    """How ``grestws ÷ websockets`` moved against ``grestws@base ÷ websockets``, in percent."""
    now = ratios.get(_ratio_name((CURRENT, BASELINE)))
    before = ratios.get(_ratio_name((PREVIOUS, BASELINE)))
    change = (
        None if now is None or before is None or not before.median else (now.median / before.median - 1) * 100
    )
    paired = [(current[r] / previous[r] - 1) * 100 for r in current.keys() & previous.keys() if previous[r]]
    within = None
    if change is not None:
        worse = -change if metric.higher_is_better else change
        within = worse <= ALLOWED_CHANGE_PCT
    return {"change_pct": change, "per_repeat_pct": summarize(paired), "within": within}


def summary_json(table: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`summary` with every :class:`Summary` as a plain dict (None stays None)."""

    def plain(s: Summary | None) -> dict[str, float] | None:
        return None if s is None else s.as_dict()

    def plain_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
        out = {
            "peers": {p: plain(s) for p, s in entry["peers"].items()},
            "ratios": {r: plain(s) for r, s in entry["ratios"].items()},
        }
        if "change" in entry:
            change = entry["change"]
            out["change"] = {**change, "per_repeat_pct": plain(change["per_repeat_pct"])}
        return out

    return {
        loop: {mid: plain_entry(entry) for mid, entry in per_loop.items()} for loop, per_loop in table.items()
    }


# -- tables -------------------------------------------------------------------------------------


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _value(s: Summary | None, digits: int) -> str:
    if s is None:
        return "n/a"
    if s.n == 1:
        return _number(s.median, digits)
    return f"{_number(s.median, digits)} [{_number(s.min, digits)}-{_number(s.max, digits)}]"


def _ratio(s: Summary | None) -> str:
    if s is None:
        return "n/a"
    if s.n == 1:
        return f"{s.median:.2f}"
    return f"{s.median:.2f} [{s.min:.2f}-{s.max:.2f}]"


def _target(metric: Metric, s: Summary | None) -> str:
    if metric.target is None:
        return ""
    sign = "≥" if metric.higher_is_better else "≤"
    if s is None:
        return f"{sign} {metric.target:.2f}"
    met = s.median >= metric.target if metric.higher_is_better else s.median <= metric.target
    return f"{sign} {metric.target:.2f} {'✓' if met else '✗'}"


@dataclass(frozen=True)
class _Table:
    """One table per loop: its title after the loop's name, its peer columns, its ratios."""

    title: str
    peers: tuple[str, ...]
    ratios: tuple[tuple[str, str], ...]


def _tables(peers: Sequence[str]) -> list[_Table]:
    """The main table (every peer but the uvicorn, the observed and the grestws-on-picows
    ones), the uvicorn table, the table of metrics and tracing and the table of grestws on
    picows, each when one of its peers ran."""
    main = tuple(peer for peer in peers if peer not in (*UVICORN, *OBSERVED, *ON_PICOWS))
    served = tuple(peer for peer in peers if peer in UVICORN)
    observed = tuple(peer for peer in peers if peer in OBSERVED)
    on_picows = tuple(peer for peer in peers if peer in ON_PICOWS)
    base = (CURRENT,) if CURRENT in peers else ()
    tables = [_Table("", main, RATIOS)] if main else []
    if served:
        tables.append(_Table("on uvicorn", served, UVICORN_RATIOS))
    if observed:
        tables.append(_Table("metrics and tracing on", (*base, *observed), OBSERVED_RATIOS))
    if on_picows:
        tables.append(_Table("grestws on picows", (*base, *on_picows), PICOWS_RATIOS))
    return tables


def _rows(
    per_loop: Mapping[str, Any], table: _Table, peers: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    ratio_names = [_ratio_name(pair) for pair in table.ratios if pair[0] in peers and pair[1] in peers]
    header = ["metric", "unit", *table.peers, *(name.replace("/", " ÷ ") for name in ratio_names)]
    if "grestws/websockets" in ratio_names:
        header.append("target (grestws ÷ websockets)")
    observed = _ratio_name((GRESTWS_METRICS, CURRENT))
    if observed in ratio_names:
        header.append(f"target ({GRESTWS_METRICS} ÷ {CURRENT})")
    on_picows = _ratio_name((GRESTWS_PICOWS, CURRENT))
    if on_picows in ratio_names:
        header.append(f"target ({GRESTWS_PICOWS} ÷ {CURRENT})")
    rows = []
    for metric in METRICS:
        entry = per_loop.get(metric.id)
        if entry is None or not any(entry["peers"].get(peer) for peer in table.peers):
            continue
        arrow = "↑" if metric.higher_is_better else "↓"
        row = [f"{metric.label} {arrow}", metric.unit]
        row += [_value(entry["peers"].get(peer), metric.digits) for peer in table.peers]
        row += [_ratio(entry["ratios"].get(name)) for name in ratio_names]
        if "grestws/websockets" in ratio_names:
            row.append(_target(metric, entry["ratios"].get("grestws/websockets")))
        if observed in ratio_names:
            cost = replace(metric, target=OBSERVED_TARGET if metric.key == "rate" else None)
            row.append(_target(cost, entry["ratios"].get(observed)))
        if on_picows in ratio_names:
            gain = replace(metric, target=PICOWS_TARGETS.get(metric.id))
            row.append(_target(gain, entry["ratios"].get(on_picows)))
        rows.append(row)
    return header, rows


def _title(loop: str, table: _Table) -> str:
    return f"{loop}, {table.title}" if table.title else loop


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{round(value, 1) + 0.0:+.1f} %"  # + 0.0: no "-0.0"


def _percent_range(s: Summary | None) -> str:
    if s is None:
        return "n/a"
    if s.n == 1:
        return _percent(s.median)
    return f"{_percent(s.median)} [{_percent(s.min)[:-2]} to {_percent(s.max)[:-2]}]"


def _change_rows(per_loop: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "metric",
        "unit",
        f"{CURRENT} ÷ {BASELINE}",
        f"{PREVIOUS} ÷ {BASELINE}",
        "ratio change in %",
        f"per repeat ({CURRENT} ÷ {PREVIOUS} - 1)",
        f"≤ {ALLOWED_CHANGE_PCT:g} % worse",
    ]
    rows = []
    for metric in METRICS:
        entry = per_loop.get(metric.id)
        if entry is None or "change" not in entry:
            continue
        change = entry["change"]
        arrow = "↑" if metric.higher_is_better else "↓"
        within = change["within"]
        rows.append(
            [
                f"{metric.label} {arrow}",
                metric.unit,
                _ratio(entry["ratios"].get(_ratio_name((CURRENT, BASELINE)))),
                _ratio(entry["ratios"].get(_ratio_name((PREVIOUS, BASELINE)))),
                _percent(change["change_pct"]),
                _percent_range(change["per_repeat_pct"]),
                "n/a" if within is None else ("✓" if within else "✗"),
            ]
        )
    return header, rows


def _markdown(title: str, header: list[str], rows: list[list[str]]) -> str:
    align = ["---", "---"] + ["--:"] * (len(header) - 2)
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _text(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [title]
    for row in [header, *rows]:
        cells = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def markdown(table: Mapping[str, Any], peers: Sequence[str]) -> str:
    """One Markdown table per event loop, and one more for the uvicorn peers if they ran."""
    parts = [
        _markdown(f"### {_title(loop, t)}", *_rows(per_loop, t, peers))
        for loop, per_loop in table.items()
        for t in _tables(peers)
    ]
    return "\n\n".join(parts) + "\n"


def text_table(table: Mapping[str, Any], peers: Sequence[str]) -> str:
    """The tables of :func:`markdown` as aligned plain text, for the terminal."""
    parts = [
        _text(f"== {_title(loop, t)} ==", *_rows(per_loop, t, peers))
        for loop, per_loop in table.items()
        for t in _tables(peers)
    ]
    return "\n\n".join(parts) + "\n"


def _has_changes(table: Mapping[str, Any]) -> bool:
    return any("change" in entry for per_loop in table.values() for entry in per_loop.values())


def changes_markdown(table: Mapping[str, Any]) -> str:
    """One Markdown table per loop of ``grestws ÷ websockets`` against ``grestws@base ÷
    websockets``; empty without ``grestws@base``."""
    if not _has_changes(table):
        return ""
    parts = [_markdown(f"### {loop}: {CHANGE_TITLE}", *_change_rows(pl)) for loop, pl in table.items()]
    return "\n\n".join(parts) + "\n"


def changes_text(table: Mapping[str, Any]) -> str:
    """The tables of :func:`changes_markdown` as aligned plain text; empty without ``grestws@base``."""
    if not _has_changes(table):
        return ""
    parts = [_text(f"== {loop}: {CHANGE_TITLE} ==", *_change_rows(pl)) for loop, pl in table.items()]
    return "\n\n".join(parts) + "\n"


# -- the chart ------------------------------------------------------------------------------------

_CHART_PEERS = (
    (PICOWS, ("#6a3d9a", "#b9a3d6")),
    ("grestws", ("#1f5f99", "#6fa8dc")),
    (GRESTWS_PICOWS, ("#00838f", "#80cbc4")),
    (GRESTWS_UVICORN, ("#2e7d32", "#8cc98f")),
    (PREVIOUS, ("#4d4d4d", "#a6a6a6")),
    ("socketio", ("#b8641a", "#f0b26b")),
    (SOCKETIO_UVICORN, ("#8e2c48", "#e08aa5")),
)
"""Each peer's colours, in the order of the bars: dark for the asyncio loop, light for
uvloop (any further loop reuses them). A peer is drawn only when it ran."""


def write_chart(table: Mapping[str, Any], path: Path, title: str) -> bool:
    """Bars of peer ÷ websockets per shape, one per peer and loop: picows, grestws, grestws
    on picows, grestws on uvicorn, grestws@base, socketio, socketio on uvicorn, those that
    ran.

    Left: the rates (higher is better); right: memory per idle connection (lower is
    better). Whiskers span min-max of the repeats; a dashed line marks 1.0, the baseline.
    Returns False when there is nothing to draw.
    """
    import matplotlib  # imported here: only the chart needs it, and the backend goes first

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loops = list(table)
    rates = [m for m in METRICS if m.key == "rate" and any(m.id in table[loop] for loop in loops)]
    memory = [m for m in METRICS if m.shape == "memory" and any(m.id in table[loop] for loop in loops)]
    if not rates and not memory:
        return False
    chart_peers = [
        (peer, colors)
        for peer, colors in _CHART_PEERS
        if any(
            entry["ratios"].get(_ratio_name((peer, BASELINE)))
            for per_loop in table.values()
            for entry in per_loop.values()
        )
    ]
    series = [
        (peer, loop, colors[i % len(colors)]) for peer, colors in chart_peers for i, loop in enumerate(loops)
    ]
    if not series:
        return False
    width = 0.8 / len(series)
    crowded = len(series) > 4  # labels upright, a wider figure
    fig, (left, right) = plt.subplots(
        1,
        2,
        figsize=(12 + 0.6 * max(0, len(series) - 4) + 0.8 * max(0, len(rates) - 6), 6 if crowded else 5),
        gridspec_kw={"width_ratios": [max(len(rates), 1), max(len(memory), 1) + 0.6]},
    )
    for axis, metrics, ylabel in (
        (left, rates, "throughput ÷ websockets (higher is better)"),
        (right, memory, "memory per connection ÷ websockets (lower is better)"),
    ):
        for n, (peer, loop, color) in enumerate(series):
            xs, heights, low, high = [], [], [], []
            for i, metric in enumerate(metrics):
                entry = table[loop].get(metric.id)
                s = None if entry is None else entry["ratios"].get(f"{peer}/{BASELINE}")
                if s is None:
                    continue
                xs.append(i - 0.4 + width * (n + 0.5))
                heights.append(s.median)
                low.append(s.median - s.min)
                high.append(s.max - s.median)
            bars = axis.bar(
                xs, heights, width, color=color, label=f"{peer} ({loop})", yerr=[low, high], capsize=2
            )
            axis.bar_label(
                bars, fmt="%.2f", fontsize=6 if crowded else 7, padding=2, rotation=90 if crowded else 0
            )
        axis.axhline(1.0, color="black", linewidth=1, linestyle="--")
        axis.set_xticks(range(len(metrics)), [m.label for m in metrics], fontsize=9)
        axis.set_ylabel(ylabel, fontsize=9)
        axis.grid(axis="y", alpha=0.3)
        axis.margins(y=0.12 if crowded else 0.05)  # room for the labels above the whiskers
        axis.set_ylim(bottom=0)
    fig.suptitle(title, fontsize=10)
    if crowded:  # below the axes, one column per peer, clear of the bars
        handles, labels = left.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", fontsize=8, ncols=len(chart_peers), frameon=False)
        fig.tight_layout(rect=(0, 0.1, 1, 1))
    else:
        left.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
