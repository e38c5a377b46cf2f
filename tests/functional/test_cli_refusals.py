"""Every command, given a bad argument, says why in one line and exits with the table's code:
unknown versions, models, stacks, buckets, functions, and no region at all. Never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support import Account

from lambdaserve.cli.context import Services
from lambdaserve.cli.exit_codes import TABLE
from lambdaserve.cli.main import main

CODES = {row.code for row in TABLE}


@pytest.fixture(autouse=True)
def _locations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the commands below look, besides the account's bucket and function."""
    monkeypatch.setenv("LAMBDASERVE_MONITORING_BUCKET", "no-such-monitoring-bucket")
    monkeypatch.setenv("LAMBDASERVE_LOG_GROUP", "/aws/lambda/no-such-function")
    monkeypatch.setenv("LAMBDASERVE_BATCH_STATE_MACHINE", "arn:aws:states:us-east-1:1:sm:none")


def _refused_in_one_line(result: Result, code: int | None = None) -> str:
    assert result.exit_code != 0, result.output
    assert result.exit_code in CODES, result.exit_code
    if code is not None:
        assert result.exit_code == code, result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    (line,) = [line for line in result.stderr.splitlines() if line.strip()][-1:]
    assert line.startswith("Error: "), result.stderr
    return line


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("rollback", "--to", "99"), 1, "99"),
        (("deploy", "no-such-model", "1"), 1, "no-such-model"),
        (("show", "retail-propensity", "99"), 1, "no version 99"),
        (("lock", "no-such-model", "1"), 1, "no-such-model"),
        (("shadow", "start", "no-such-model", "1"), 1, "no-such-model"),
        (("promote",), 5, "no canary"),
        (("rollback",), 5, "no earlier version"),
        (("--function", "no-such-function", "status"), 1, "no-such-function"),
        (("--function", "no-such-function", "capacity", "--set", "1"), 1, "no-such-function"),
        (("--bucket", "no-such-bucket", "versions", "retail-propensity"), 1, "no-such-bucket"),
        (("--stack", "no-such-stack", "status"), 1, "no stack no-such-stack"),
        (("monitor", "report", "--out", "report.html"), 1, "no-such-monitoring-bucket"),
        (("batch", "status", "arn:aws:states:us-east-1:1:execution:none:x"), 1, "execution"),
        (("batch", "score", "s3://no-such-bucket/in/", "s3://no-such-bucket/out/"), 1, "bucket"),
    ],
)
def test_a_bad_argument_is_one_line_and_the_tables_code(
    cli: Callable[..., Result], args: tuple[str, ...], code: int, says: str, tmp_path: Path
) -> None:
    line = _refused_in_one_line(cli(*args), code)
    assert says.lower() in line.lower(), line


def test_an_empty_input_prefix_is_refused_before_a_run_starts(
    cli: Callable[..., Result], account: Account
) -> None:
    account.s3.put_object(Bucket=account.bucket, Key="elsewhere/a.csv", Body=b"x\n1\n")
    uri = f"s3://{account.bucket}/batch/in/"
    line = _refused_in_one_line(cli("batch", "score", uri, f"s3://{account.bucket}/out/"), 1)
    assert line == f"Error: no objects under {uri}"


@pytest.mark.parametrize(
    "args",
    [("endpoint",), ("init-parameters",), ("status",), ("region",)],
)
def test_no_region_anywhere_is_one_line(
    args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))  # a profile without one
    monkeypatch.setenv("LAMBDASERVE_FUNCTION", "f")
    result = CliRunner(mix_stderr=False).invoke(main, ["--stack", "s", *args])
    line = _refused_in_one_line(result, 1)
    assert line.startswith("Error: no AWS region: pass --region, set AWS_REGION"), line


def test_the_region_comes_from_aws_region_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 26 #1: boto3 never reads AWS_REGION; the README's `export AWS_REGION=...` must
    still decide where the first deploy goes."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    said = CliRunner(mix_stderr=False).invoke(main, ["region", "--json"])
    assert said.exit_code == 0, said.stderr
    assert json.loads(said.stdout) == {"region": "eu-west-1", "source": "AWS_REGION"}
    flagged = CliRunner(mix_stderr=False).invoke(main, ["--region", "ap-south-1", "region"])
    assert flagged.stdout.strip() == "ap-south-1"  # the flag beats the environment


def test_the_region_comes_from_the_profile_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("[profile shop]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "shop")
    said = CliRunner(mix_stderr=False).invoke(main, ["region", "--json"])
    assert said.exit_code == 0, said.stderr
    assert json.loads(said.stdout) == {"region": "eu-central-1", "source": "the profile (shop)"}


def test_a_synchronous_invoke_outwaits_the_function_and_is_never_retried() -> None:
    """Issue 26 #5: botocore's 60 s read timeout and its retries ran a 62 s monitor five times."""
    client = Services(region="us-east-1").invoke_client()
    config = client.meta.config
    assert config.read_timeout > 900  # Lambda's longest function timeout
    assert config.retries["total_max_attempts"] == 1
