"""The code stays in pieces one can read: no module, class or function over its limit."""

from __future__ import annotations

import ast
from pathlib import Path

import imgdesk

MAX_MODULE_LINES = 800
MAX_CLASS_LINES = 600
MAX_FUNCTION_LINES = 80


def _oversized(path: Path) -> list[str]:
    """What in one module is over its limit, as ``file: name (lines)``."""
    text = path.read_text(encoding="utf-8")
    found = []
    if len(text.splitlines()) > MAX_MODULE_LINES:
        found.append(f"{path} ({len(text.splitlines())} lines)")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            limit = MAX_CLASS_LINES
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit = MAX_FUNCTION_LINES
        else:
            continue
        assert node.end_lineno is not None
        lines = node.end_lineno - node.lineno + 1
        if lines > limit:
            found.append(f"{path}: {node.name} ({lines} lines)")
    return found


def test_no_module_class_or_function_is_over_its_size_limit() -> None:
    folder = Path(imgdesk.__file__).parent
    modules = sorted(folder.rglob("*.py"))
    assert len(modules) > 50  # the package was found
    oversized = [entry for path in modules for entry in _oversized(path)]
    assert oversized == []
