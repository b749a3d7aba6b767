"""``--baseline REV``: an earlier revision of grestws as one more peer, ``grestws@base``.

The revision is checked out once into a git worktree in a cache directory outside the
repository (``$GRESTWS_BENCH_CACHE``, else ``$XDG_CACHE_HOME/grestws-bench``, else
``~/.cache/grestws-bench``), one per commit, and reused by later runs::

    <cache>/<commit:12>/grestws-<commit:12>/   the worktree (detached at the commit)
    <cache>/<commit:12>/path/grestws           a symlink to the worktree's grestws package

The ``grestws@base`` processes run the peer module of the *current* checkout
(``benchmarks/peers/grestws_peer.py``), so both versions run the same benchmark code; only
the ``grestws`` package differs. They start as ``python -P -m benchmarks.peers.grestws_peer``
with ``PYTHONPATH=<cache>/<commit:12>/path:<repository root>``: ``-P`` keeps the working
directory (the repository root, whose ``grestws`` is the current one) off the front of
``sys.path``, the ``path`` directory holds nothing but the baseline's ``grestws``, and the
repository root after it supplies ``benchmarks``. The allocator setting of every other peer
process (``MALLOC_MMAP_THRESHOLD_``) is kept. ``BENCH_GRESTWS_DIR`` tells the peer module
which ``grestws`` it must have imported; it exits otherwise (see
:func:`benchmarks.peers.grestws_peer.check_origin`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import report
from benchmarks.common import PEER_ENV, ROOT, BenchError

__all__ = ("BASE_PEER", "CURRENT_PEER", "EXPECT_ENV", "Baseline", "Launch", "current_launch", "prepare")

CURRENT_PEER = report.CURRENT
BASE_PEER = report.PREVIOUS
"""The name of the baseline peer in the schedule, the report and the JSON: ``grestws@base``."""

EXPECT_ENV = "BENCH_GRESTWS_DIR"
"""The environment variable naming the directory the peer's ``grestws`` must come from."""


@dataclass(frozen=True)
class Launch:
    """How one peer's processes start: interpreter options and environment."""

    python_options: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: PEER_ENV)


@dataclass(frozen=True)
class Baseline:
    """A revision of grestws checked out for ``grestws@base``."""

    rev: str
    """As given on the command line."""
    commit: str
    """The full commit hash ``rev`` resolved to."""
    worktree: Path
    path_dir: Path
    """The directory put first on ``PYTHONPATH``: only the ``grestws`` symlink is in it."""
    launch: Launch
    grestws_file: str = ""
    """``grestws.__file__`` as a ``grestws@base`` process imports it (symlinks resolved)."""
    grestws_version: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "rev": self.rev,
            "commit": self.commit,
            "worktree": str(self.worktree),
            "grestws_file": self.grestws_file,
            "grestws_version": self.grestws_version,
        }


def cache_dir() -> Path:
    """Where the baseline worktrees are kept (outside the repository)."""
    if explicit := os.environ.get("GRESTWS_BENCH_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "grestws-bench"


def _git(*args: str, cwd: Path = ROOT) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise BenchError(f"git {' '.join(args)} failed: {detail.strip()}") from None
    return done.stdout.strip()


def resolve(rev: str) -> str:
    """The full hash of the commit ``rev`` names in the repository (read-only)."""
    return _git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")


def _usable(worktree: Path, commit: str) -> bool:
    """Whether ``worktree`` is a checkout of ``commit`` with its tracked files untouched."""
    if not (worktree / ".git").exists():
        return False
    try:
        head = _git("rev-parse", "HEAD", cwd=worktree)
        changes = _git("status", "--porcelain", "--untracked-files=no", cwd=worktree)
    except BenchError:
        return False
    return head == commit and not changes


def _worktree(commit: str, home: Path) -> Path:
    """The worktree of ``commit`` under ``home``: reused if intact, else (re)made."""
    worktree = home / f"grestws-{commit[:12]}"
    if _usable(worktree, commit):
        return worktree
    if worktree.exists():
        shutil.rmtree(worktree)
    home.mkdir(parents=True, exist_ok=True)
    # -f: the path may still be registered from a worktree whose directory was deleted
    _git("worktree", "add", "-f", "--detach", str(worktree), commit)
    if not _usable(worktree, commit):
        raise BenchError(f"could not check {commit} out into {worktree}")
    return worktree


def _path_dir(worktree: Path, home: Path) -> Path:
    package = worktree / "grestws"
    if not (package / "__init__.py").is_file():
        raise BenchError(f"{worktree} has no grestws package")
    path_dir = home / "path"
    path_dir.mkdir(parents=True, exist_ok=True)
    link = path_dir / "grestws"
    if link.is_symlink() or link.exists():
        if link.resolve() == package.resolve():
            return path_dir
        link.unlink()
    link.symlink_to(os.path.relpath(package, path_dir), target_is_directory=True)
    return path_dir


def current_launch(checked: bool) -> Launch:
    """How the ``grestws`` peer (the current checkout) starts; ``checked`` adds the origin check."""
    if not checked:
        return Launch()
    return Launch(env={**PEER_ENV, EXPECT_ENV: str(ROOT / "grestws")})


def _probe(launch: Launch, expected: Path) -> dict[str, str]:
    """Import ``grestws`` and the peer module as a peer process would; check where they came from."""
    code = (
        "import json, grestws, benchmarks\n"
        "from benchmarks.peers import grestws_peer\n"
        "grestws_peer.check_origin()\n"
        "print(json.dumps({'grestws': grestws.__file__, 'version': getattr(grestws, '__version__', '?'),"
        " 'benchmarks': benchmarks.__file__}))\n"
    )
    done = subprocess.run(
        [sys.executable, *launch.python_options, "-c", code],
        cwd=ROOT,
        env=launch.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"importing grestws for the benchmark failed: {done.stderr.strip()[-2000:]}")
    found: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    grestws_dir = Path(found["grestws"]).resolve().parent
    benchmarks_dir = Path(found["benchmarks"]).resolve().parent
    if grestws_dir != expected.resolve():
        raise BenchError(f"a peer process imports grestws from {grestws_dir}, not {expected}")
    if benchmarks_dir != (ROOT / "benchmarks").resolve():
        raise BenchError(
            f"a peer process imports benchmarks from {benchmarks_dir}, not {ROOT / 'benchmarks'}"
        )
    return {"grestws_file": str(Path(found["grestws"]).resolve()), "version": found["version"]}


def check_current() -> str:
    """``grestws.__file__`` as a ``grestws`` (current) peer process imports it, checked."""
    return _probe(current_launch(checked=True), ROOT / "grestws")["grestws_file"]


def prepare(rev: str) -> Baseline:
    """Check ``rev`` out (or reuse its worktree) and make sure a peer process imports it.

    Raises:
        BenchError: ``rev`` names no commit, the checkout failed, or a peer process would
            import some other grestws.
    """
    try:
        commit = resolve(rev)
    except BenchError:
        raise BenchError(f"--baseline {rev!r} names no commit of {ROOT}") from None
    home = cache_dir() / commit[:12]
    worktree = _worktree(commit, home)
    path_dir = _path_dir(worktree, home)
    pythonpath = [str(path_dir), str(ROOT)]
    if inherited := PEER_ENV.get("PYTHONPATH"):
        pythonpath.append(inherited)
    env = {**PEER_ENV, "PYTHONPATH": os.pathsep.join(pythonpath), EXPECT_ENV: str(worktree / "grestws")}
    launch = Launch(python_options=("-P",), env=env)
    found = _probe(launch, worktree / "grestws")
    return Baseline(
        rev=rev,
        commit=commit,
        worktree=worktree,
        path_dir=path_dir,
        launch=launch,
        grestws_file=found["grestws_file"],
        grestws_version=found["version"],
    )
