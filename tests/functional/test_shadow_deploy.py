"""Shadow deploys through the CLI on moto, with the real predict handler on both sides: live
mirrors what it answered (never what it refused), the shadow scores it and writes no metric,
the report compares, stop undoes what start set up. The alias never moves."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from support import Account, load_event

from lambdaserve.bundle import sample
from lambdaserve.cli.context import Services
from lambdaserve.cli.main import main
from lambdaserve.serving.mirror import MIRROR, SHADOW

PREFIX = "/lambdaserve/serving/mirror-test"
GROUP = "/aws/lambda/lambdaserve-predict"
MONITORING = "monitoring-shadow"


@pytest.fixture
def cli(published: Account, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    for key, value in {
        "LAMBDASERVE_BUCKET": published.bucket,
        "LAMBDASERVE_FUNCTION": published.function,
        "LAMBDASERVE_SSM_PREFIX": PREFIX,
        "LAMBDASERVE_LOG_GROUP": GROUP,
        "LAMBDASERVE_MONITORING_BUCKET": MONITORING,
    }.items():
        monkeypatch.setenv(key, value)
    boto3.client("logs").create_log_group(logGroupName=GROUP)
    boto3.client("s3").create_bucket(Bucket=MONITORING)
    lam = published.lam
    config = lam.get_function_configuration(FunctionName=published.function)
    env = {
        **config["Environment"]["Variables"],
        "SHADOW_PARAMETER": f"{PREFIX}/shadow",
        "SHADOW_REFRESH_SECONDS": "0.5",  # 30 s by default
    }
    lam.update_function_configuration(
        FunctionName=published.function, Environment={"Variables": env}
    )

    def invoke(*args: str) -> Result:
        return CliRunner(mix_stderr=False).invoke(
            main, list(args), obj=Services(invoker=published.invoker)
        )

    # As the template's stack would have it: live reads this stack's switch.
    assert invoke("deploy", "retail-propensity", "1").exit_code == 0
    return invoke


def _emitted(result: Result) -> Any:
    """The command's --json output (the in-process handler's log lines share stdout)."""
    text = result.stdout
    return json.loads(text[text.index("{\n") :])


def _request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    event = copy.deepcopy(load_event("predict.json"))
    event["body"] = json.dumps({"instances": rows})
    return event


def _lines(out: str, marker: str) -> list[str]:
    return [line for line in out.splitlines() if f'"{marker}":1' in line]


def _awslogs(lines: list[str]) -> dict[str, Any]:
    data = {
        "logEvents": [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(lines)]
    }
    return {
        "awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}
    }


def test_a_shadow_sees_live_requests_and_is_reported_and_stopped(
    cli: Callable[..., Result], published: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    before = published.live()
    started = cli("shadow", "start", "retail-propensity", "2", "--percent", "100", "--json")
    assert started.exit_code == 0, started.output
    shadow = _emitted(started)
    version = shadow["function_version"]
    assert (shadow["state"], shadow["percent"], shadow["live_version"]) == ("running", 100, "2")
    assert published.live() == before  # no client is routed to it
    filters = boto3.client("logs").describe_subscription_filters(logGroupName=GROUP)
    (subscription,) = filters["subscriptionFilters"]
    assert subscription["destinationArn"].endswith(f":{version}")
    assert subscription["filterPattern"] == "{ $.lambdaserve_mirror = 1 }"
    policy = json.loads(published.lam.get_policy(FunctionName=published.function,
                                                 Qualifier=version)["Policy"])  # fmt: skip
    assert policy["Statement"][0]["Principal"]["Service"] == "logs.amazonaws.com"
    assert cli("shadow", "start", "retail-propensity", "2").exit_code == 5  # one at a time

    records, _ = sample.generate(600, 77)
    capsys.readouterr()
    deadline = time.monotonic() + 20
    mirrored: list[str] = []
    i = 0
    while len(mirrored) < 12 and time.monotonic() < deadline:  # the switch is read off-path
        rows = records[(i * 40) % 560 : (i * 40) % 560 + 40]
        answer = published.invoker.invoke(published.function, before.version, _request(rows))
        assert answer["statusCode"] == 200
        refused = _request([{**rows[0], "recency_days": "soon"}])
        assert (
            published.invoker.invoke(published.function, before.version, refused)["statusCode"]
            == 422
        )
        mirrored += _lines(capsys.readouterr().out, MIRROR)
        i += 1
    assert len(mirrored) >= 12
    assert all(
        len(json.loads(m)["body"]["instances"]) == 40 for m in mirrored
    )  # never the refused one

    counts = published.invoker.invoke(published.function, version, _awslogs(mirrored))
    assert counts == {"records": len(mirrored), "rows": 40 * len(mirrored), "skipped": 0}
    out = capsys.readouterr().out
    shadow_lines = _lines(out, SHADOW)
    assert len(shadow_lines) == len(mirrored)
    assert '"_aws"' not in out  # no EMF: the shadow's requests count in no business metric
    body = "\n".join(shadow_lines).encode()
    boto3.client("s3").put_object(Bucket=MONITORING, Key="capture/shadow-1", Body=body)

    report = cli("shadow", "report", "--min-rows", "100", "--json")
    result = _emitted(report)
    assert result["rows"] == 40 * len(mirrored)
    assert result["requests"] == len(mirrored)
    assert result["latency_ms"]["shadow"]["p50"] > 0
    assert result["verdict"] in {"agree", "disagree"}
    assert report.exit_code == (7 if result["verdict"] == "disagree" else 0)
    print(f"seed-8 retrain against the sample: agreement {result['agreement']:.4f}")

    stopped = cli("shadow", "stop", "--json")
    assert stopped.exit_code == 0, stopped.output
    assert _emitted(stopped)["state"] == "stopped"
    assert (
        boto3.client("logs").describe_subscription_filters(logGroupName=GROUP)[
            "subscriptionFilters"
        ]
        == []
    )
    assert cli("shadow", "stop").exit_code == 5
    assert "stopped" in cli("shadow", "status").stdout
    assert published.live() == before


def test_a_shadow_is_refused_while_live_reads_no_switch_or_a_canary_runs(
    published: Account,
) -> None:
    from lambdaserve.release.errors import CanaryInProgressError, InvalidReleaseError
    from lambdaserve.release.shadow import Shadows

    boto3.client("logs").create_log_group(logGroupName=GROUP)
    deployer = published.deployer()
    shadows = Shadows(deployer, boto3.client("logs"), published.ssm, GROUP, f"{PREFIX}/shadow")
    with pytest.raises(InvalidReleaseError, match="reads no shadow switch"):
        shadows.start("retail-propensity", "2", 10)  # a stack from before shadows
    deployer.deploy("retail-propensity", "2", canary_percent=10)
    with pytest.raises(CanaryInProgressError):
        shadows.start("retail-propensity", "1", 10)
    with pytest.raises(InvalidReleaseError, match="above 0, at most 100"):
        shadows.start("retail-propensity", "1", 0)
    assert shadows.read() is None  # nothing was recorded
    assert (
        boto3.client("logs").describe_subscription_filters(logGroupName=GROUP)[
            "subscriptionFilters"
        ]
        == []
    )
