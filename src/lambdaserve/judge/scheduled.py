"""The canary judge for canaries CodeDeploy runs (the GitOps way): a scheduled function reads
the alias; while it has a canary, it judges the canary against the stable version on the
evidence of the last window (`evidence`, `canary`) and emits `CanaryJudgeFailed` (1 on a
failing verdict, else 0). The template's `CanaryJudgeAlarm` watches that metric and is one of
the deployment preference's alarms, so CodeDeploy stops the deployment and rolls the alias
back, as it does for the error and latency alarms. Clients are passed in."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdaserve.alias import AliasState
from lambdaserve.judge.canary import JudgeSettings, judge
from lambdaserve.judge.evidence import Evidence

METRIC = "CanaryJudgeFailed"


def judge_settings_from_env(env: Mapping[str, str]) -> JudgeSettings:
    """JudgeSettings with each field overridable as JUDGE_<FIELD> (e.g. JUDGE_MIN_ROWS)."""
    values: dict[str, Any] = {}
    for field_ in dataclasses.fields(JudgeSettings):
        raw = env.get(f"JUDGE_{field_.name.upper()}", "")
        if raw != "":
            values[field_.name] = int(raw) if field_.type in (int, "int") else float(raw)
    return JudgeSettings(**values)


@dataclass(frozen=True)
class ScheduledJudgeSettings:
    """What template.yaml gives CanaryJudgeFunction."""

    target_function: str
    registry_bucket: str
    monitoring_bucket: str
    alias: str = "live"
    window: str = "10m"  # the evidence each run judges on
    judge: JudgeSettings = field(default_factory=JudgeSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ScheduledJudgeSettings:
        """TARGET_FUNCTION, REGISTRY_BUCKET, MONITORING_BUCKET (required), CANARY_JUDGE_WINDOW
        and the JUDGE_* thresholds."""
        return cls(
            target_function=env["TARGET_FUNCTION"],
            registry_bucket=env["REGISTRY_BUCKET"],
            monitoring_bucket=env["MONITORING_BUCKET"],
            window=env.get("CANARY_JUDGE_WINDOW") or "10m",
            judge=judge_settings_from_env(env),
        )


def judge_alias(
    lam: Any,
    evidence: Evidence,
    settings: JudgeSettings,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[str, Any] | None:
    """The verdict on the alias's canary over [start, end), or None without a canary."""
    alias = lam.get_alias(FunctionName=evidence.function, Name=evidence.alias)
    state = AliasState.from_alias(dict(alias))
    if not state.weights:
        return None
    (canary,) = state.weights
    stable, candidate = evidence.gather(state.version, canary, start, end)
    verdict = judge(stable, candidate, settings)
    verdict["weight"] = state.weights[canary]
    return verdict
