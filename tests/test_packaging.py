"""imgdesk as users get it: a wheel in a fresh venv, a PyInstaller bundle, and start-up faults.

The wheel is built from a copy of the source (so the checkout is not touched), installed
with pip into a new ``python -m venv`` (no system site-packages, so a missing dependency
shows), and its ``imgdesk demo`` runs offscreen until the sample request finished.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from imgdesk.core import paths
from imgdesk.core.paths import resource_path

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
RESOURCE_FILES = ("imgdesk.png", "imgdesk.ico", "imgdesk.desktop", "demo/catalogue.csv")
PIP_QUIET = ("--disable-pip-version-check", "--no-input", "--quiet")


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing pointing at this checkout or its venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("IMGDESK_DATA_DIR", None)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(home),  # QSettings and the default data folder stay inside the test
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
    )
    env.update(extra)
    return env


def _run(args: list[str | Path], tmp_path: Path, timeout: float = 240, **env: str) -> Any:
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=tmp_path,  # not the checkout: nothing is imported from the source by accident
        env=_clean_env(tmp_path, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """imgdesk's wheel, built by pip (with build isolation, as for a user) from a copy."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "imgdesk", source / "imgdesk", ignore=shutil.ignore_patterns("__pycache__")
    )
    result = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            *PIP_QUIET,
            "--no-deps",
            "-w",
            work / "dist",
            source,
        ],
        work,
    )
    assert result.returncode == 0, result.stderr
    (built,) = (work / "dist").glob("imgdesk-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its dependencies installed by pip."""
    work = tmp_path_factory.mktemp("venv")
    venv = work / "venv"
    result = _run([sys.executable, "-m", "venv", venv], work)
    assert result.returncode == 0, result.stderr
    result = _run([_bin(venv, "python"), "-m", "pip", "install", *PIP_QUIET, wheel], work)
    assert result.returncode == 0, result.stderr
    return venv


def test_the_wheel_holds_the_resources_but_not_the_scripts_that_make_them(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in RESOURCE_FILES:
        assert f"imgdesk/resources/{name}" in names
    pictures = {name for name in names if name.startswith("imgdesk/resources/demo/images/")}
    assert pictures == {
        f"imgdesk/resources/demo/images/{path.name}"
        for path in resource_path("demo/images").iterdir()
    }
    assert not [
        name for name in names if name.startswith("imgdesk/resources/") and name.endswith(".py")
    ]
    assert not [name for name in names if name.startswith("resources/")]


def test_the_installed_app_finds_its_resources_inside_the_venv(venv: Path, tmp_path: Path) -> None:
    script = (
        "from imgdesk.core.paths import resource_path\n"
        f"for name in {RESOURCE_FILES + ('demo/images',)!r}:\n"
        "    print(resource_path(name))\n"
    )
    result = _run([_bin(venv, "python"), "-c", script], tmp_path)
    assert result.returncode == 0, result.stderr
    found = [Path(line) for line in result.stdout.splitlines()]
    assert len(found) == len(RESOURCE_FILES) + 1
    for path in found:
        assert path.exists(), path
        assert path.resolve().is_relative_to(venv.resolve()), path  # not the checkout's
    # The desktop entry starts the installed command and names the installed icon.
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment, method-assign]
    entry.read(found[RESOURCE_FILES.index("imgdesk.desktop")], encoding="utf-8")
    assert entry["Desktop Entry"]["Exec"].split()[0] == "imgdesk"
    assert _bin(venv, "imgdesk").is_file()
    assert entry["Desktop Entry"]["Icon"] == found[RESOURCE_FILES.index("imgdesk.png")].stem


def test_the_installed_demo_runs_its_sample_request_to_the_end(venv: Path, tmp_path: Path) -> None:
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    result = _run(
        [_bin(venv, "imgdesk"), "demo", "--quit-when-done"], tmp_path, TMPDIR=str(temp_root)
    )
    assert result.returncode == 0, result.stderr
    assert "imgdesk demo: the sample request finished as designed" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(temp_root.glob("imgdesk-demo-*")) == []  # its temporary data folder is gone


def test_the_bundle_puts_the_resources_where_resource_path_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run build.spec with stand-ins for PyInstaller's classes, then lay out its data files."""
    captured: dict[str, Any] = {}

    class Analysis:
        def __init__(self, scripts: list[str], datas: list[tuple[str, str]], **_: Any) -> None:
            captured["datas"] = datas
            # PyInstaller's table of contents: (name in the bundle, source file, kind).
            self.datas = [(str(Path(dest) / Path(src).name), src, "DATA") for src, dest in datas]
            self.pure = self.scripts = self.binaries = []

    def keep(name: str) -> Any:
        def stand_in(*args: Any, **kwargs: Any) -> None:
            captured[name] = kwargs

        return stand_in

    spec = (ROOT / "build.spec").read_text(encoding="utf-8")
    names = {"Analysis": Analysis, "PYZ": keep("PYZ"), "EXE": keep("EXE")}
    names |= {"COLLECT": keep("COLLECT"), "BUNDLE": keep("BUNDLE")}
    exec(compile(spec, "build.spec", "exec"), {"SPECPATH": str(ROOT), **names})

    bundle = tmp_path / "bundle"
    for source, destination in captured["datas"]:
        assert not source.endswith(".py"), source
        (bundle / destination).mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, bundle / destination)
    assert Path(captured["EXE"]["icon"]).is_file()
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    for name in RESOURCE_FILES:
        assert paths.resource_path(name).is_file(), name
        assert paths.resource_path(name).is_relative_to(bundle)
    bundled = sorted(path.name for path in paths.resource_path("demo/images").iterdir())
    monkeypatch.delattr(sys, "_MEIPASS")
    assert bundled == sorted(path.name for path in paths.resource_path("demo/images").iterdir())


# -- a window that cannot start says why --------------------------------------------------------


def test_an_unusable_data_folder_is_one_line_on_stderr_not_a_traceback(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be\n")
    result = _run(
        [sys.executable, "-m", "imgdesk", "--data-dir", not_a_folder],
        tmp_path,
        timeout=60,
        PYTHONPATH=str(ROOT),
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("imgdesk: "), result.stderr
    assert str(not_a_folder) in lines[0]


def test_a_demo_whose_resources_are_missing_says_so_and_keeps_its_log(tmp_path: Path) -> None:
    """The fault of a wheel without its package data: one line, the traceback in the log."""
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    missing = tmp_path / "no-resources"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import imgdesk.demo\n"
        "imgdesk.demo.resource_path = lambda name: Path(sys.argv[1]) / name\n"
        "from imgdesk.cli import main\n"
        "sys.exit(main(['demo']))\n"
    )
    result = _run(
        [sys.executable, "-c", script, missing],
        tmp_path,
        timeout=60,
        TMPDIR=str(temp_root),
        PYTHONPATH=str(ROOT),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("imgdesk: unexpected error: "), result.stderr
    assert str(missing / "demo" / "images") in lines[0]
    # The temporary data folder is kept, since its log is the only record, and named.
    (folder,) = temp_root.glob("imgdesk-demo-*")
    assert str(folder / "logs") in lines[0]
    log = (folder / "logs" / "imgdesk.log").read_text(encoding="utf-8")
    assert "Traceback" in log and "FileNotFoundError" in log
