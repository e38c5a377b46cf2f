"""Issue 27 on the local stack, through the real CLI and real HTTP: `lambdaserve local deploy`
applies a parameter change as `sam deploy` would (local/cloudformation.py, CloudFormation's
documented rules over the SAM transform of the built template), then releases live's model.

Sequences 1, 2 and 3 of the issue; 4 (a hand move) is in test_local_stack's neighbours and the
functional tests; 5 (migrating a round-2 stack) needs round 2's build and runs against moto
(tests/functional/test_one_owner.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.running import Running, running_stack
from support import load_event

pytestmark = pytest.mark.build
BODY = json.loads(load_event("predict.json")["body"])


@pytest.fixture(scope="module")
def stack(sam_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    yield from running_stack(sam_build, tmp_path_factory)


def _ok(result: Any) -> Any:
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    return result


def _served(stack: Running) -> dict[str, Any]:
    """Which function version answered /predict, with which model, on how much memory."""
    status, headers, body = stack.call("/predict", BODY)
    assert status == 200, body
    version = headers["X-Lambdaserve-Function-Version"]
    lam = stack.client("lambda")
    config = lam.get_function_configuration(
        FunctionName=stack.env["LAMBDASERVE_FUNCTION"], Qualifier=version
    )
    return {"version": version, "model": body["model"]["version"], "memory": config["MemorySize"]}


def _local_deploy(stack: Running, *parameters: str) -> Any:
    args = [a for p in parameters for a in ("--parameter", p)]
    return stack.cli("local", "deploy", "--state-dir", str(stack.state_dir), *args, "--json")


def test_sequence_1_an_infrastructure_change_reaches_traffic_and_keeps_a_rolled_back_model(
    stack: Running, second_bundle_session: Path
) -> None:
    _ok(stack.cli("publish", str(second_bundle_session)))
    _ok(stack.cli("deploy", "retail-propensity", "2"))
    released = _served(stack)
    assert (released["model"], released["memory"]) == ("2", 1024)

    changed = _ok(_local_deploy(stack, "MemorySize=2048"))
    assert "sam deploy: updated PredictFunction (MemorySize)" in changed.stderr
    assert json.loads(changed.stdout)["released"] is True
    after = _served(stack)
    assert (after["model"], after["memory"]) == ("2", 2048)
    assert after["version"] != released["version"]

    _ok(stack.cli("rollback"))
    assert _served(stack) == released

    _ok(_local_deploy(stack, "MemorySize=3008"))
    again = _served(stack)
    assert (again["model"], again["memory"]) == ("2", 3008)  # still the rolled-back model


def test_sequence_2_an_infrastructure_change_during_a_canary_is_refused_and_no_caller_sees_a_5xx(
    stack: Running,
) -> None:
    _ok(stack.cli("deploy", "retail-propensity", "1", "--canary", "10"))
    before = json.loads(_ok(stack.cli("status", "--json")).stdout)["versions"]
    statuses: list[int] = []
    stop = threading.Event()

    def callers() -> None:
        while not stop.is_set():
            statuses.append(stack.call("/predict", BODY)[0])

    thread = threading.Thread(target=callers)
    thread.start()
    try:
        refused = _local_deploy(stack, "MemorySize=1024")
    finally:
        stop.set()
        thread.join()
    assert refused.returncode == 5, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "a canary is in progress on live" in line
    assert json.loads(_ok(stack.cli("status", "--json")).stdout)["versions"] == before
    assert statuses
    assert set(statuses) == {200}, statuses
    _ok(stack.cli("rollback"))


def test_sequence_3_a_lock_file_release_takes_the_same_path_and_rolls_back(
    stack: Running, tmp_path: Path
) -> None:
    lock = tmp_path / "lambdaserve.lock"
    _ok(stack.cli("lock", "retail-propensity", "1", "--file", str(lock)))
    released = json.loads(_ok(stack.cli("release", "--lock", str(lock), "--json")).stdout)
    assert released["released"] is True
    assert _served(stack)["model"] == "1"
    history = json.loads(_ok(stack.cli("history", "--json")).stdout)
    assert history[-1]["reason"].startswith("release retail-propensity v1 (lock file")
    assert history[-1]["verification"]["status"] == "verified"
    again = json.loads(_ok(stack.cli("release", "--lock", str(lock), "--json")).stdout)
    assert again["released"] is False  # nothing new: the lock is what serves
    _ok(stack.cli("rollback"))
    assert _served(stack)["model"] == "2"


def test_sequence_4_a_hand_move_is_named_and_rollback_returns_to_the_recorded_version(
    stack: Running,
) -> None:
    """`aws lambda update-alias` by hand is the UpdateAlias call below (boto3, the AWS CLI's
    own library), sent to the local stack's endpoint."""
    recorded = _served(stack)["version"]
    lam = stack.client("lambda")
    lam.update_alias(
        FunctionName=stack.env["LAMBDASERVE_FUNCTION"], Name="live", FunctionVersion="1"
    )
    status = json.loads(_ok(stack.cli("status", "--json")).stdout)
    assert status["drift"]["summary"] == (
        f"live was moved outside lambdaserve: lambdaserve recorded version {recorded} (100%), "
        "it now sends version 1 (100%)"
    )
    refused = _local_deploy(stack, "MemorySize=1024")
    assert refused.returncode == 5
    assert "moved outside lambdaserve" in refused.stderr
    _ok(stack.cli("rollback"))
    assert _served(stack)["version"] == recorded
