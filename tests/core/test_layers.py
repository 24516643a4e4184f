"""The core stays Qt-free, so a headless command or another machine can run it."""

import subprocess
import sys

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
