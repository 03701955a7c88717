"""Store errors are read in one place: nothing outside store/classify.py reads an error's text.

Why a test of the source: a second reading of "not found" or "timed out" somewhere else drifts
from the first (one says retry, the other gives up), and only a look at every module finds it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import agentnn

PACKAGE = Path(agentnn.__file__).parent
CLASSIFY = PACKAGE / "mlflow_integration" / "store" / "classify.py"
ERROR_NAMES = ("error", "exc", "err", "e")


def _reads_error_text(node: ast.Compare) -> bool:
    """``"words" in str(error)`` (or ``str(error).lower()``), the shape of a private reading."""
    if not any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
        return False
    text = ast.unparse(node.comparators[0])
    return any(text.startswith(f"str({name})") for name in ERROR_NAMES)


def test_no_module_but_classify_reads_the_text_of_an_error():
    readings = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == CLASSIFY:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and _reads_error_text(node):
                readings.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert readings == [], "classify these in store/classify.py:\n" + "\n".join(readings)
