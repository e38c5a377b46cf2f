"""gc.freeze() after init, only where Lambda (or the local stack) runs the handler."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from lambdaserve.shared.collector import freeze_init


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process keeps its collector as it was


def test_a_lambda_environment_freezes_what_init_made(unfrozen: None) -> None:
    assert freeze_init({"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"})
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize("env", [{}, {"AWS_EXECUTION_ENV": "CloudShell"}])
def test_elsewhere_the_collector_is_left_alone(unfrozen: None, env: dict[str, str]) -> None:
    assert not freeze_init(env)
    assert gc.get_freeze_count() == 0
