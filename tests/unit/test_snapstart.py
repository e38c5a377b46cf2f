"""SnapStart: random state made at init is reseeded in every restored environment."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable

import numpy as np
import pytest

from lambdaserve.shared.snapstart import register_after_restore, reseed


def test_without_the_runtime_hook_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails, as off Lambda
    assert register_after_restore() is False


def test_the_hook_reseeds_both_generators_after_each_restore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks: list[Callable[[], None]] = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_after_restore = hooks.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    assert register_after_restore() is True
    assert hooks == [reseed]
    # Two environments restored from one snapshot start with the same state...
    random.seed(1)
    np.random.seed(1)
    snapshot = (random.getstate(), np.random.get_state()[1].copy())
    # ...and the hook gives each its own.
    hooks[0]()
    assert random.getstate() != snapshot[0]
    assert not np.array_equal(np.random.get_state()[1], snapshot[1])
