"""The CodeDeploy PreTraffic hook: validates the new version, always reports a status.
CodeDeploy's hook API is not in moto: botocore's Stubber checks the exact request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from support import ROOT, Account, import_fresh

from lambdaserve import manifest
from lambdaserve.judge.pretraffic import run_hook, split_version_arn

EVENT = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "hook-execution-1"}


@pytest.fixture
def codedeploy() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("codedeploy")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _expect(stubber: Stubber, status: str) -> None:
    stubber.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"]},
        {
            "deploymentId": EVENT["DeploymentId"],
            "lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"],
            "status": status,
        },
    )


def _new_version(account: Account, bundle: Path) -> tuple[str, manifest.Manifest]:
    """A version as `sam deploy` would publish it, with the model of `bundle`."""
    published = account.registry.publish(bundle, "ci")
    account.deployer().deploy(published.name, published.version, 10)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{account.function}:2"
    return arn, published.manifest


def test_a_good_version_is_reported_succeeded(
    account: Account, sample_bundle: Path, codedeploy: tuple[Any, Stubber]
) -> None:
    client, stubber = codedeploy
    arn, model = _new_version(account, sample_bundle)
    _expect(stubber, "Succeeded")
    status, problems = run_hook(
        EVENT, target_arn=arn, manifest=model, invoker=account.invoker, codedeploy=client
    )
    assert (status, problems) == ("Succeeded", [])


def test_a_version_that_answers_otherwise_is_reported_failed(
    account: Account, sample_bundle: Path, codedeploy: tuple[Any, Stubber]
) -> None:
    client, stubber = codedeploy
    arn, model = _new_version(account, sample_bundle)
    raw = model.to_dict()
    raw["golden_examples"][2]["prediction"] = 1 - raw["golden_examples"][2]["prediction"]
    _expect(stubber, "Failed")
    status, problems = run_hook(
        EVENT,
        target_arn=arn,
        manifest=manifest.Manifest.from_dict(raw),
        invoker=account.invoker,
        codedeploy=client,
    )
    assert status == "Failed"
    assert problems == [
        f"example 2: predicted {1 - raw['golden_examples'][2]['prediction']}, "
        f"bundled {raw['golden_examples'][2]['prediction']}"
    ]


def test_an_unreadable_model_layer_or_a_crash_is_reported_failed(
    codedeploy: tuple[Any, Stubber], sample_bundle: Path
) -> None:
    client, stubber = codedeploy

    class Crashing:
        def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> Any:
            raise TimeoutError("read timed out")

    _expect(stubber, "Failed")
    _expect(stubber, "Failed")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f:3"
    status, problems = run_hook(
        EVENT,
        target_arn=arn,
        manifest=ValueError("no manifest.json"),
        invoker=Crashing(),
        codedeploy=client,
    )
    assert (status, problems) == (
        "Failed",
        ["cannot read the model layer's manifest: no manifest.json"],
    )
    status, problems = run_hook(
        EVENT,
        target_arn=arn,
        manifest=manifest.read(sample_bundle),
        invoker=Crashing(),
        codedeploy=client,
    )
    assert (status, problems) == ("Failed", ["TimeoutError: read timed out"])


def test_hook_handler_reads_its_model_layer_and_reports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, codedeploy: tuple[Any, Stubber]
) -> None:
    client, stubber = codedeploy
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "missing"))
    monkeypatch.setenv("TARGET_VERSION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:f:3")
    hook = import_fresh(ROOT / "functions/pretraffic/app.py", "pretraffic_app")
    monkeypatch.setattr(hook, "clients", lambda: (boto3.client("lambda"), client, None))
    _expect(stubber, "Failed")
    result = hook.lambda_handler(EVENT, None)
    assert result["status"] == "Failed"
    assert "no manifest.json" in json.dumps(result["problems"])


def test_split_version_arn() -> None:
    assert split_version_arn("arn:aws:lambda:eu-west-1:1:function:f:12") == (
        "arn:aws:lambda:eu-west-1:1:function:f",
        "12",
    )
    with pytest.raises(ValueError, match="not a qualified"):
        split_version_arn("arn:aws:lambda:eu-west-1:1:function:f")
