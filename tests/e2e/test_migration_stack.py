"""Issue 27, sequence 5 on the local stack: a stack of round 2's template (AutoPublishAlias with
a CodeDeploy DeploymentPreference; tests/fixtures/template-round2.yaml) migrated to today's with
`lambdaserve local deploy --template ... --adopt`, as `make deploy ADOPT=1` does on AWS
(docs: Releases, Migrating). Round 2's build is today's build folders under round 2's template:
the functions' code and layers did not change, only the template did."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.running import Running, running_stack
from support import ROOT, load_event

pytestmark = pytest.mark.build
BODY = json.loads(load_event("predict.json")["body"])
ROUND2 = ROOT / "tests/fixtures/template-round2.yaml"


def _round2_build(sam_build: Path, folder: Path) -> Path:
    """Today's built folders, linked, under round 2's template (paths as `sam build` writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for built in sam_build.iterdir():
        if built.is_dir():
            (folder / built.name).symlink_to(built.resolve())
    text = ROUND2.read_text()
    for source, built_name in (
        ("functions/predict/", "PredictFunction"),
        ("functions/batch/", "BatchFunction"),
        ("functions/monitor/", "MonitorFunction"),
    ):
        text = text.replace(f"CodeUri: {source}", f"CodeUri: {built_name}")
    statemachine = ROOT / "statemachines/batch_scoring.asl.json"
    text = text.replace(
        "DefinitionUri: statemachines/batch_scoring.asl.json", f"DefinitionUri: {statemachine}"
    )
    (folder / "template.yaml").write_text(text)
    return folder


@pytest.fixture(scope="module")
def round2(sam_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    build = _round2_build(sam_build, tmp_path_factory.mktemp("round2") / "build")
    yield from running_stack(build, tmp_path_factory)


def _ok(result: Any) -> Any:
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    return result


def _model(stack: Running) -> tuple[int, str, str]:
    status, headers, body = stack.call("/predict", BODY)
    model = body["model"]["version"] if status == 200 else ""
    return status, headers.get("X-Lambdaserve-Function-Version", ""), model


def test_a_round_2_stack_migrates_with_live_moved_once_to_the_same_model(
    round2: Running, sam_build: Path, second_bundle_session: Path
) -> None:
    _ok(round2.cli("publish", str(second_bundle_session)))
    _ok(round2.cli("deploy", "retail-propensity", "2"))
    status, before, model = _model(round2)
    assert (status, model) == (200, "2")

    answers: list[tuple[int, str, str]] = []
    stop = threading.Event()

    def callers() -> None:
        while not stop.is_set():
            answers.append(_model(round2))

    thread = threading.Thread(target=callers)
    thread.start()
    try:
        migrated = round2.cli(
            "local", "deploy", "--state-dir", str(round2.state_dir),
            "--template", str(sam_build / "template.yaml"), "--adopt", "--json",
        )  # fmt: skip
    finally:
        stop.set()
        thread.join()
    _ok(migrated)
    assert "sam deploy: updated PredictFunctionAliaslive" in migrated.stderr
    # Every caller got model 2 during the migration, from whichever version served it.
    assert answers
    assert {(s, m) for s, _, m in answers} == {(200, "2")}, answers
    status, after, model = _model(round2)
    assert (status, model) == (200, "2")
    assert after != before
    history = json.loads(_ok(round2.cli("history", "--json")).stdout)
    assert history[-1]["reason"] == "adopted a move made outside lambdaserve"
    assert json.loads(_ok(round2.cli("status", "--json")).stdout)["drift"] is None

    # From now on an infrastructure change reaches traffic through the release alone.
    changed = _ok(
        round2.cli(
            "local",
            "deploy",
            "--state-dir",
            str(round2.state_dir),
            "--parameter",
            "MemorySize=2048",
            "--json",
        )
    )
    assert "Alias" not in changed.stderr
    assert json.loads(changed.stdout)["released"] is True
    assert _model(round2)[2] == "2"
