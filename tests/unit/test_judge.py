"""The canary judge and the automatic steps, on evidence made by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from lambdaserve.alias import AliasState
from lambdaserve.bundle import sample
from lambdaserve.judge.canary import JudgeSettings, VersionEvidence, judge
from lambdaserve.monitor import drift
from lambdaserve.monitor.window import add_record
from lambdaserve.release.errors import InvalidReleaseError
from lambdaserve.release.rollout import NoRolloutError, Plan, Rollout, parse_interval, parse_steps
from lambdaserve.serving.capture import DataCapture
from lambdaserve.serving.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(sample_bundle_session: Path) -> Predictor:
    return Predictor.load(sample_bundle_session, max_rows=50_000)


def window(predictor: Predictor, rows: int, seed: int, mix: str = "training") -> drift.Window:
    records, _ = sample.generate(rows, seed, mix)
    matrix = predictor.parse({"instances": records})
    out = drift.Window([f.name for f in predictor.manifest.features])
    for record in DataCapture(predictor.manifest, 1.0).records(matrix, predictor.predict(matrix)):
        add_record(out, record)
    return out


def evidence(predictor: Predictor, version: str, seed: int, **overrides: Any) -> VersionEvidence:
    found = VersionEvidence(
        version, invocations=1000, errors=0, p99_ms=12.0, window=window(predictor, 1000, seed)
    )
    found.profile = predictor.manifest.baseline_profile
    for key, value in overrides.items():
        setattr(found, key, value)
    return found


def statuses(verdict: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in verdict["checks"]}


def test_a_canary_that_behaves_like_stable_passes(predictor: Predictor) -> None:
    verdict = judge(evidence(predictor, "1", 11), evidence(predictor, "2", 12))
    assert verdict["verdict"] == "pass", verdict["summary"]
    assert set(statuses(verdict).values()) == {"pass"}
    assert (verdict["stable"], verdict["canary"]) == ("1", "2")


def test_a_model_retrained_on_other_data_passes(
    predictor: Predictor, second_bundle_session: Path
) -> None:
    retrained = Predictor.load(second_bundle_session, max_rows=50_000)
    verdict = judge(evidence(predictor, "1", 11), evidence(retrained, "2", 12))
    assert verdict["verdict"] == "pass", verdict["summary"]


def test_a_quiet_failure_fails_on_its_predictions_alone(
    predictor: Predictor, quiet_bundle_session: Path
) -> None:
    """Same errors, same latency, and consistent with its own bundle: but it predicts "no
    purchase" for nearly everyone the stable version sees buying."""
    quiet = Predictor.load(quiet_bundle_session, max_rows=50_000)
    verdict = judge(evidence(predictor, "1", 11), evidence(quiet, "2", 12))
    assert verdict["verdict"] == "fail"
    checks = statuses(verdict)
    assert checks["prediction_shift"] == checks["class_mix"] == "fail"
    assert checks["errors"] == checks["latency_p99"] == checks["output_vs_baseline"] == "pass"
    assert verdict["summary"].startswith("prediction_shift ")


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"errors": 50}, "errors"),  # 5% against none
        ({"p99_ms": 100.0}, "latency_p99"),  # limit: 12 * 1.5 + 20 = 38 ms
    ],
)
def test_errors_and_latency_fail_by_how_much(
    predictor: Predictor, change: dict[str, Any], check: str
) -> None:
    verdict = judge(evidence(predictor, "1", 11), evidence(predictor, "2", 12, **change))
    assert verdict["verdict"] == "fail"
    (failed,) = [c for c in verdict["checks"] if c["status"] == "fail"]
    assert failed["name"] == check
    assert failed["value"] > failed["threshold"]


def test_the_canarys_own_inputs_drifting_fail_it(predictor: Predictor) -> None:
    canary = evidence(predictor, "2", 12, window=window(predictor, 1000, 13, "black-friday"))
    checks = statuses(judge(evidence(predictor, "1", 11), canary))
    assert checks["input_drift"] == "fail"


@pytest.mark.parametrize(
    "change", [{"invocations": 40}, {"window": drift.Window([])}], ids=["requests", "rows"]
)
def test_too_little_evidence_waits(predictor: Predictor, change: dict[str, Any]) -> None:
    verdict = judge(evidence(predictor, "1", 11), evidence(predictor, "2", 12, **change))
    assert verdict["verdict"] == "wait"


def test_missing_metrics_are_skipped_not_passed_silently(predictor: Predictor) -> None:
    canary = evidence(predictor, "2", 12, invocations=None, p99_ms=None, profile=None)
    verdict = judge(evidence(predictor, "1", 11), canary)
    assert statuses(verdict)["errors"] == statuses(verdict)["latency_p99"] == "skipped"
    assert statuses(verdict)["baseline"] == "skipped"
    assert verdict["verdict"] == "pass"  # predictions compared: the evidence there is


def test_steps_and_intervals_are_parsed_or_refused() -> None:
    assert parse_steps("10,50,100") == [10, 50, 100]
    assert parse_interval("30s") == 30
    assert parse_interval("5m") == 300
    for bad in ("50,10,100", "10,50", "100", "0,100", "a,100"):
        with pytest.raises(InvalidReleaseError):
            parse_steps(bad)
    with pytest.raises(InvalidReleaseError):
        parse_interval("5 minutes")


class FakeDeployer:
    alias = "live"

    def __init__(self) -> None:
        self.state = AliasState("1")
        self.moves: list[tuple[str, str, dict[str, Any] | None]] = []

    def current(self) -> tuple[AliasState, None]:
        return self.state, None

    def deploy(self, name: str, version: str, percent: float, reason: str, **_: Any) -> AliasState:
        self.state = AliasState("1", {"2": percent / 100})
        self.moves.append(("deploy", f"{percent:g}", None))
        return self.state

    def step(self, percent: float, reason: str, judged: dict[str, Any]) -> AliasState:
        self.state = AliasState("1", {"2": percent / 100})
        self.moves.append(("step", f"{percent:g}", judged))
        return self.state

    def promote(self, reason: str, *, judged: dict[str, Any]) -> AliasState:
        self.state = AliasState("2")
        self.moves.append(("promote", reason, judged))
        return self.state

    def rollback(self, to: str, reason: str, *, judged: dict[str, Any]) -> AliasState:
        self.state = AliasState(to)
        self.moves.append(("rollback", reason, judged))
        return self.state


class FakeEvidence:
    def __init__(self, predictor: Predictor, canaries: list[VersionEvidence]) -> None:
        self.predictor, self.canaries = predictor, canaries

    def gather(self, stable: str, canary: str, start: Any, end: Any) -> Any:
        return evidence(self.predictor, stable, 11), self.canaries.pop(0)


class Store:
    def __init__(self) -> None:
        self.plan: Plan | None = None

    def read(self) -> Plan | None:
        return self.plan

    def write(self, plan: Plan) -> None:
        self.plan = plan


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def rollout(predictor: Predictor, canaries: list[VersionEvidence]) -> tuple[Rollout, FakeDeployer]:
    clock = Clock()
    deployer = FakeDeployer()
    roll = Rollout(
        deployer,  # type: ignore[arg-type]
        FakeEvidence(predictor, canaries),  # type: ignore[arg-type]
        Store(),  # type: ignore[arg-type]
        progress=lambda _: None,
        now=clock,
        sleep=clock.sleep,
    )
    return roll, deployer


def test_a_good_canary_steps_to_promotion(predictor: Predictor) -> None:
    roll, deployer = rollout(predictor, [evidence(predictor, "2", s) for s in (12, 13)])
    plan = roll.run(roll.start("m", "2", [10, 50, 100], 300, JudgeSettings()))
    assert plan.state == "promoted"
    assert [m[:2] for m in deployer.moves] == [
        ("deploy", "10"), ("step", "50"), ("promote", "judge: pass at 50%")
    ]  # fmt: skip
    assert all(m[2] and m[2]["verdict"] == "pass" for m in deployer.moves[1:])
    assert [v["step"] for v in plan.verdicts] == [10, 50]


def test_a_failing_canary_is_rolled_back_at_once_with_its_verdict(predictor: Predictor) -> None:
    bad = evidence(predictor, "2", 12, errors=80)
    roll, deployer = rollout(predictor, [bad])
    plan = roll.run(roll.start("m", "2", [10, 50, 100], 300, JudgeSettings()))
    assert plan.state == "rolled_back"
    assert deployer.state == AliasState("1")
    kind, reason, judged = deployer.moves[-1]
    assert kind == "rollback"
    assert reason.startswith("judge: errors ")
    assert judged is not None
    assert judged["verdict"] == "fail"


def test_no_evidence_in_time_rolls_back_fail_closed(predictor: Predictor) -> None:
    empty = [evidence(predictor, "2", 12, window=drift.Window([])) for _ in range(40)]
    roll, deployer = rollout(predictor, empty)
    plan = roll.run(roll.start("m", "2", [10, 100], 60, JudgeSettings()))
    assert plan.state == "rolled_back"
    assert "not enough evidence" in deployer.moves[-1][1]
    assert all(v["verdict"] == "wait" for v in plan.verdicts)


def test_resume_refuses_an_alias_moved_outside_the_rollout(predictor: Predictor) -> None:
    roll, deployer = rollout(predictor, [])
    roll.start("m", "2", [10, 100], 60, JudgeSettings())
    assert roll.resume().canary == "2"
    deployer.state = AliasState("1")  # someone rolled back by hand
    with pytest.raises(NoRolloutError):
        roll.resume()
    with pytest.raises(NoRolloutError):
        roll.resume()  # the plan is abandoned now
