"""Bench runs write outside the tree (issue 26 #15: `make loadtest` rewrote tracked files and
left `git status` dirty), stamped with the date and the machine the performance page shows."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from support import ROOT


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_results_go_outside_the_tree_stamped_with_date_and_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LAMBDASERVE_BENCH_OUT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    outputs = _load(ROOT / "bench" / "outputs.py", "outputs")
    assert not outputs.results_dir().resolve().is_relative_to(ROOT)
    path = outputs.write("example", {"ratio": 1.1}, "# Example\n\n| a |\n")
    figures = json.loads(path.read_text())
    assert figures["ratio"] == 1.1
    assert figures["measured_at"][:4].isdigit()
    assert "cores" in figures["machine"]
    page = (path.parent / "example.md").read_text().splitlines()
    assert page[0] == "# Example"
    assert page[2].startswith(f"_Measured {figures['measured_at'][:10]} on ")


def test_the_load_test_writes_its_plot_outside_the_tree_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LAMBDASERVE_BENCH_OUT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    monkeypatch.syspath_prepend(str(ROOT / "bench" / "loadtest"))
    loadtest = _load(ROOT / "bench" / "loadtest" / "run.py", "loadtest_run")
    assert not loadtest.parse([]).out.resolve().is_relative_to(ROOT)
