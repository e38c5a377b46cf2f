"""The rooms as a newcomer reads them: every room says its job, subpackage __init__ files import
nothing (a handler pays only for what it imports), and the handlers import only shipped rooms.
(The import rules between rooms are import-linter's contracts, run by `make lint`.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import ROOT

SRC = ROOT / "src" / "lambdaserve"
ROOMS = sorted(p.parent.name for p in SRC.glob("*/__init__.py"))
SHIPPED = {"shared", "serving", "batch", "monitor"}
ROOT_CONTRACTS = {"manifest", "problem", "alias"}


def test_the_rooms_are_the_ones_the_architecture_page_names() -> None:
    named = {"batch", "bundle", "cli", "judge", "local", "monitor", "registry", "release"}
    assert set(ROOMS) == named | {"serving", "shared"}
    assert {p.stem for p in SRC.glob("*.py")} == {
        "__init__",
        "alias",
        "client",
        "manifest",
        "problem",
    }


@pytest.mark.parametrize("room", ROOMS)
def test_each_room_says_its_job_and_imports_nothing_on_entry(room: str) -> None:
    tree = ast.parse((SRC / room / "__init__.py").read_text())
    doc = ast.get_docstring(tree)
    assert doc, room
    assert len(doc.split()) >= 10, room
    assert all(isinstance(node, ast.Expr) for node in tree.body), f"{room}/__init__.py runs code"


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.split(".")[0] == "lambdaserve"}


@pytest.mark.parametrize(
    "handler", sorted(ROOT.glob("functions/*/app.py")), ids=lambda p: p.parent.name
)
def test_handlers_import_only_shipped_rooms_and_root_contracts(handler: Path) -> None:
    for module in _imported(handler):
        parts = module.split(".")
        assert len(parts) > 1, module
        assert parts[1] in SHIPPED | ROOT_CONTRACTS, (
            f"{handler} imports {module}, which is not shipped"
        )
