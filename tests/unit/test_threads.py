"""Native thread pools sized to the vCPUs the function's memory buys."""

from __future__ import annotations

import pytest

from lambdaserve.shared.threads import THREAD_VARIABLES, limit_threads, threads_for


@pytest.mark.parametrize(
    ("memory", "threads"), [(128, 1), (1024, 1), (1769, 1), (3538, 2), (10240, 5), (99999, 6)]
)
def test_one_thread_per_vcpu_lambda_gives(memory: int, threads: int) -> None:
    assert threads_for(memory) == threads


def test_every_thread_variable_is_set_unless_the_configuration_sets_it() -> None:
    env = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "4096"}
    assert limit_threads(env) == 2
    assert {env[v] for v in THREAD_VARIABLES} == {"2"}
    mine = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "4096", "OMP_NUM_THREADS": "4"}
    assert limit_threads(mine) == 4
    assert limit_threads({}) == 1  # outside Lambda: one
