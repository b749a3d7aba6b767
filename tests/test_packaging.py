"""The packages another project installs: the sdist and the wheel build, pass ``twine
check``, and the wheel holds the whole package, its console script and its metadata, and
imports from where it was installed.

The build runs without isolation (no network): it needs ``build`` and the backend,
hatchling, in this environment; the ``dev`` extra installs both.
"""

from __future__ import annotations

import email.parser
import importlib.util
import json
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

import grestws

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SUBPACKAGES = ("broker", "contract", "protocol", "testkit", "transports")
RUNTIME_DEPENDENCIES = ("msgspec", "websockets", "typing-extensions", "httpx")
EXTRAS = ("asgi", "bench", "dev", "metrics", "picows", "redis", "testing", "tracing", "uvloop")


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=90, check=False
    )
    assert proc.returncode == 0, f"{args} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the sdist and the wheel, the wheel built from the sdist."""
    missing = [name for name in ("build", "hatchling", "twine") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"building offline needs {', '.join(missing)}: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return out


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"{pattern} in {folder}: {[path.name for path in found]}"
    return found[0]


def wheel_file(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(f"grestws-{grestws.__version__}.dist-info/{name}").decode()


def metadata(wheel: Path) -> Message:
    return email.parser.Parser().parsestr(wheel_file(wheel, "METADATA"))


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    sdist = only(dist, f"grestws-{grestws.__version__}.tar.gz")
    wheel = only(dist, f"grestws-{grestws.__version__}-py3-none-any.whl")
    run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)


def test_wheel_holds_the_whole_package(dist: Path) -> None:
    wheel = only(dist, "*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "grestws").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert "grestws/py.typed" in names
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    for package in SUBPACKAGES:
        assert f"grestws/{package}/__init__.py" in names
    stray = sorted(name for name in names if not name.startswith(("grestws/", "grestws-")))
    assert not stray, f"the wheel holds more than the package: {stray}"


def test_both_carry_the_license_and_the_sdist_no_local_clutter(dist: Path) -> None:
    wheel = only(dist, "*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert any(name.endswith(".dist-info/licenses/LICENSE") for name in archive.namelist())
    with tarfile.open(only(dist, "*.tar.gz")) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    assert "LICENSE" in names
    assert "grestws/__init__.py" in names
    clutter = [name for name in names if name.startswith((".hypothesis", ".venv", "benchmarks/results"))]
    assert not clutter, clutter[:5]


def test_wheel_declares_the_console_script(dist: Path) -> None:
    entry_points = wheel_file(only(dist, "*.whl"), "entry_points.txt")
    assert "[console_scripts]" in entry_points
    assert "grestws = grestws.cli:main" in entry_points


def test_wheel_metadata_names_dependencies_and_extras(dist: Path) -> None:
    meta = metadata(only(dist, "*.whl"))
    assert meta["Name"] == "grestws"
    assert meta["Version"] == grestws.__version__
    assert meta["Requires-Python"] == ">=3.11"
    requires = meta.get_all("Requires-Dist") or []
    unconditional = [req for req in requires if "extra ==" not in req]
    for dependency in RUNTIME_DEPENDENCIES:
        assert any(req.startswith(dependency) for req in unconditional), (dependency, unconditional)
    assert len(unconditional) == len(RUNTIME_DEPENDENCIES), unconditional
    assert sorted(meta.get_all("Provides-Extra") or []) == list(EXTRAS)
    assert any(req.startswith("starlette") and "extra == 'asgi'" in req for req in requires)


def test_installed_wheel_imports_from_where_it_was_installed(dist: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    run(
        sys.executable,
        *("-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", target),
        only(dist, "*.whl"),
    )
    assert (target / "bin" / "grestws").exists()
    # -I -S: neither this checkout, nor PYTHONPATH, nor the editable install's .pth file;
    # the dependencies come from this environment's site-packages, grestws from the target.
    probe = (
        "import json, sys; sys.path[:0] = sys.argv[1:]; "
        "import grestws, grestws.cli, grestws.protocol, grestws.transports.websockets; "
        "print(json.dumps([grestws.__version__, grestws.__file__, grestws.cli.__file__]))"
    )
    site_packages = sysconfig.get_paths()["purelib"]
    proc = run(sys.executable, "-I", "-S", "-c", probe, target, site_packages, cwd=tmp_path)
    version, package_file, cli_file = json.loads(proc.stdout)
    assert version == grestws.__version__
    assert Path(package_file).is_relative_to(target)
    assert Path(cli_file).is_relative_to(target)


def test_installed_wheel_gives_pytest_the_plugins_fixtures(dist: Path, tmp_path: Path) -> None:
    """A project that only installed grestws gets ``grestws_client`` and ``grestws_app``
    from the ``pytest11`` entry point of the installed wheel, with no conftest."""
    target = tmp_path / "site"
    run(
        sys.executable,
        *("-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", target),
        only(dist, "*.whl"),
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")  # the project's root: no ini above counts
    (project / "test_nothing.py").write_text("def test_nothing() -> None:\n    pass\n")
    # As above: -I -S, so grestws comes from the target, pytest and the rest from here.
    probe = (
        "import importlib.metadata as md, json, os, sys; sys.path[:0] = sys.argv[1:3]; "
        "[os.environ.pop(name, None) for name in ('PYTEST_ADDOPTS', 'PYTEST_PLUGINS')]; "
        "import pytest; "
        "code = pytest.main(['--fixtures', '-p', 'no:cacheprovider', sys.argv[3]]); "
        "[ep] = md.entry_points(group='pytest11', name='grestws'); "
        "print('PROBE ' + json.dumps([int(code), ep.value, str(ep.dist.locate_file('')), "
        "sys.modules['grestws.testkit.plugin'].__file__]))"
    )
    site_packages = sysconfig.get_paths()["purelib"]
    proc = run(sys.executable, "-I", "-S", "-c", probe, target, site_packages, project, cwd=tmp_path)
    output, _, last = proc.stdout.rstrip().rpartition("\n")
    assert last.startswith("PROBE "), proc.stdout
    code, entry_point, dist_folder, plugin_file = json.loads(last.removeprefix("PROBE "))
    assert code == pytest.ExitCode.OK, output
    assert entry_point == "grestws.testkit.plugin"
    assert Path(dist_folder) == target
    assert Path(plugin_file).is_relative_to(target)
    assert "fixtures defined from grestws.testkit.plugin" in output, output
    lines = output.splitlines()
    for fixture in ("grestws_client", "grestws_app"):
        assert any(line.startswith(f"{fixture} -- ") and "plugin.py:" in line for line in lines), output
