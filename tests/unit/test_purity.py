"""mm/ is the functional core: it must not import the transport, the venue clients or the shell."""

import ast
from pathlib import Path

import pytest

MM_DIR = Path(__file__).resolve().parents[2] / "mm"
FORBIDDEN = ("zmq", "picows", "ccxt", "prometheus_client", "ipc", "processes")
SHELL = {"cli.py"}  # the outermost shell, imported by nothing in mm/


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(p for p in MM_DIR.rglob("*.py") if p.name not in SHELL), ids=lambda p: p.name)
def test_mm_module_imports_no_shell(path: Path):
    assert not (_imports(path) & set(FORBIDDEN)), f"{path.name} imports {_imports(path) & set(FORBIDDEN)}"


def test_nothing_in_mm_imports_cli():
    for path in MM_DIR.rglob("*.py"):
        if path.name != "cli.py":
            assert "cli" not in {n for n in _imports(path)} and "mm.cli" not in path.read_text()
