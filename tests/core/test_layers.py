"""The core stays Qt-free, so a headless command or another machine can run it."""

import ast
import subprocess
import sys
from pathlib import Path

CHECK = """
import pkgutil, importlib, sys
import imgdesk.core
for module in pkgutil.iter_modules(imgdesk.core.__path__, "imgdesk.core."):
    importlib.import_module(module.name)
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("PySide6", "qasync"))
print(",".join(loaded))
"""


def test_importing_every_core_module_loads_no_qt() -> None:
    output = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert output == ""


def test_the_check_would_notice_qt() -> None:
    """Guard against a check that can never fail: importing Qt does show up."""
    code = "import PySide6.QtCore\n" + CHECK
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "PySide6.QtCore" in output


PACKAGE = Path(__file__).resolve().parents[2] / "imgdesk"


def imported_packages(source: str) -> set[str]:
    """The top-level names a module's source imports, and imgdesk's layers it reaches."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {
        ".".join(name.split(".")[:2]) if name.startswith("imgdesk.") else name.split(".")[0]
        for name in names
    }


def layer_imports(layer: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(PACKAGE)): imported_packages(path.read_text(encoding="utf-8"))
        for path in (PACKAGE / layer).rglob("*.py")
    }


def test_peewee_stays_behind_the_repository() -> None:
    for layer in ("engine", "gui", "cli"):
        for module, imports in layer_imports(layer).items():
            assert not imports & {"peewee", "playhouse"}, module


def test_the_engine_imports_nothing_from_the_window_or_the_command_line() -> None:
    for module, imports in layer_imports("engine").items():
        assert not imports & {"imgdesk.gui", "imgdesk.cli"}, module


def test_the_import_check_would_notice_peewee() -> None:
    assert "peewee" in imported_packages("from peewee import OperationalError\n")
    assert "imgdesk.gui" in imported_packages("from imgdesk.gui.models import X\n")
