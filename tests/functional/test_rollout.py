"""Judged rollouts with the real deployer on moto: the evidence read where AWS keeps it
(captured rows in S3, Lambda's metrics in CloudWatch), the alias moved step by step or rolled
back, every verdict in the deployment history."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from support import Account

from lambdaserve.alias import AliasState
from lambdaserve.bundle import sample
from lambdaserve.judge.canary import JudgeSettings
from lambdaserve.judge.evidence import Evidence
from lambdaserve.monitor.run import registry_manifests
from lambdaserve.monitor.window import CaptureReader
from lambdaserve.release.function_versions import function_env
from lambdaserve.release.rollout import PlanStore, Rollout
from lambdaserve.serving.capture import DataCapture
from lambdaserve.serving.predictor import Predictor

MONITORING = "monitoring-rollout"
SETTINGS = JudgeSettings(min_requests=50, min_rows=300)


class Traffic:
    """What live traffic leaves behind during a step: each version's capture lines (as the
    subscription delivers them) and Lambda's metrics of the alias per executed version."""

    def __init__(self, account: Account, predictors: dict[str, Predictor]) -> None:
        self.account, self.predictors = account, predictors
        self.s3, self.cw = boto3.client("s3"), boto3.client("cloudwatch")
        self.seed = 500

    def serve(self, seconds: float) -> None:
        state = self.account.live()
        for version in (state.version, *state.weights):
            self.seed += 1
            records, _ = sample.generate(400, self.seed)
            predictor = self.predictors[self.model_of(version)]
            matrix = predictor.parse({"instances": records})
            capture = DataCapture(predictor.manifest, 1.0)
            capture.function_version = version
            lines = [json.dumps(r) for r in capture.records(matrix, predictor.predict(matrix))]
            key = f"capture/{version}-{self.seed}"
            self.s3.put_object(Bucket=MONITORING, Key=key, Body="\n".join(lines).encode())
            dims = [
                {"Name": "FunctionName", "Value": self.account.function},
                {"Name": "Resource", "Value": f"{self.account.function}:live"},
                {"Name": "ExecutedVersion", "Value": version},
            ]
            self.cw.put_metric_data(
                Namespace="AWS/Lambda",
                MetricData=[
                    {"MetricName": "Invocations", "Value": 200.0, "Dimensions": dims},
                    {"MetricName": "Errors", "Value": 0.0, "Dimensions": dims},
                ],
            )
        time.sleep(min(seconds, 0.2))

    def model_of(self, version: str) -> str:
        config = self.account.lam.get_function_configuration(
            FunctionName=self.account.function, Qualifier=version
        )
        return function_env(dict(config))["MODEL_VERSION"]


def rollout(account: Account, traffic: Traffic) -> Rollout:
    deployer = account.deployer()
    manifests = registry_manifests(account.s3, account.bucket)

    def profile_of(version: str) -> dict[str, Any] | None:
        return manifests("retail-propensity", traffic.model_of(version)).baseline_profile

    evidence = Evidence(
        CaptureReader(account.s3, MONITORING),
        traffic.cw,
        account.function,
        "live",
        profile_of,
    )
    store = PlanStore(account.bucket, account.s3, account.function, "live")
    return Rollout(deployer, evidence, store, progress=lambda _: None, sleep=traffic.serve)


@pytest.fixture
def predictors(
    published: Account, sample_bundle: Path, second_bundle: Path, quiet_bundle_session: Path
) -> dict[str, Predictor]:
    boto3.client("s3").create_bucket(Bucket=MONITORING)
    published.registry.publish(quiet_bundle_session, "ci")
    first = Predictor.load(sample_bundle, max_rows=1000)
    return {
        "": first,  # function version 1 serves the sample as `sam deploy` left it
        "1": first,
        "2": Predictor.load(second_bundle, max_rows=1000),
        "3": Predictor.load(quiet_bundle_session, max_rows=1000),
    }


def test_a_good_model_is_stepped_to_live_with_each_verdict_recorded(
    published: Account, predictors: dict[str, Predictor]
) -> None:
    traffic = Traffic(published, predictors)
    roll = rollout(published, traffic)
    plan = roll.run(roll.start("retail-propensity", "2", [10, 50, 100], 0.5, SETTINGS))
    assert plan.state == "promoted", plan.verdicts[-1]["summary"]
    assert published.live() == AliasState(plan.canary)
    judged = [e for e in published.deployer().history_entries() if "judge" in e]
    assert [(e["to"]["weights"], e["judge"]["verdict"]) for e in judged] == [
        ({plan.canary: 0.5}, "pass"),
        ({}, "pass"),
    ]
    checks = {c["name"]: c["status"] for c in judged[-1]["judge"]["checks"]}
    assert checks["errors"] == checks["prediction_shift"] == "pass"
    assert checks["latency_p99"] == "skipped"  # moto computes no percentiles
    assert PlanStore(published.bucket, published.s3, published.function, "live").read() == plan


def test_a_quiet_failure_is_rolled_back_at_the_first_step(
    published: Account, predictors: dict[str, Predictor]
) -> None:
    traffic = Traffic(published, predictors)
    roll = rollout(published, traffic)
    plan = roll.run(roll.start("retail-propensity", "3", [10, 50, 100], 0.5, SETTINGS))
    assert plan.state == "rolled_back"
    assert published.live() == AliasState(plan.stable)
    last = published.deployer().history_entries()[-1]
    assert last["reason"].startswith("judge: prediction_shift")
    assert last["judge"]["verdict"] == "fail"
