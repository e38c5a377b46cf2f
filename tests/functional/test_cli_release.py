"""The release commands end to end through click, against moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lambdaserve.cli.main import main


def test_publish_deploy_canary_promote_rollback_through_the_cli(
    cli: Callable[..., Result], sample_bundle: Path, second_bundle: Path
) -> None:
    first = cli("publish", str(sample_bundle), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["version"] == "1"
    assert cli("publish", str(second_bundle)).exit_code == 0

    listed = json.loads(cli("versions", "retail-propensity", "--json").stdout)
    assert [v["version"] for v in listed] == ["1", "2"]
    assert set(listed[0]) == {
        "name",
        "version",
        "sha256",
        "created_at",
        "published_at",
        "published_by",
        "metrics",
        "layer_arn",
    }
    assert json.loads(cli("show", "retail-propensity", "2", "--json").stdout)["version"] == "2"
    shown = cli("show", "retail-propensity", "2").stdout
    assert shown.startswith("retail-propensity v2  ")
    assert "golden     5 examples" in shown

    deployed = cli("deploy", "retail-propensity", "1")
    assert deployed.exit_code == 0, deployed.output
    assert "live: version 2 (100%)" in deployed.stdout
    assert "validating version 2 with 5 golden examples" in deployed.stderr

    assert cli("deploy", "retail-propensity", "2", "--canary", "10").exit_code == 0
    status = json.loads(cli("status", "--json").stdout)
    assert [(v["version"], v["weight"]) for v in status["versions"]] == [("2", 0.9), ("3", 0.1)]
    canary = cli("status").stdout
    assert "version 2" in canary

    assert cli("promote").stdout.strip() == "live: version 3 (100%)"
    rolled = json.loads(cli("rollback", "--reason", "drift", "--json").stdout)
    assert rolled == {"alias": "live", "version": "2", "weights": {}}
    history = json.loads(cli("history", "--json").stdout)
    assert [h["to"]["version"] for h in history] == ["2", "2", "3", "2"]
    assert history[-1]["reason"] == "drift"
    assert "version 2" in cli("status").stdout
    said = cli("history").stdout.splitlines()
    assert "version 2 (90%), version 3 (10%, canary)" in said[1]
    assert not any("{" in line for line in said)  # written for people, not Python dicts


def test_failures_exit_non_zero_with_one_line(cli: Callable[..., Result]) -> None:
    missing = cli("deploy", "retail-propensity", "9")
    assert missing.exit_code == 1
    assert missing.stderr.strip().splitlines() == [
        "Error: no version 9 of model 'retail-propensity' in s3://lambdaserve-registry-test"
    ]
    no_canary = cli("promote")
    assert no_canary.stderr.strip() == "Error: no canary on live to promote"
    assert no_canary.exit_code == 5  # a state conflict, not a failure of the command


def test_missing_location_says_where_to_give_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDASERVE_BUCKET", raising=False)
    result = CliRunner().invoke(main, ["versions", "x"])
    assert result.exit_code == 2
    assert "LAMBDASERVE_BUCKET" in result.output
