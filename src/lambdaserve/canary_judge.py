"""The canary judge for canaries CodeDeploy runs (the GitOps way): a scheduled function reads
the alias; while it has a canary, it judges the canary against the stable version on the
evidence of the last window (evidence.py, judge.py) and emits `CanaryJudgeFailed` (1 on a
failing verdict, else 0). The template's `CanaryJudgeAlarm` watches that metric and is one of
the deployment preference's alarms, so CodeDeploy stops the deployment and rolls the alias
back, as it does for the error and latency alarms. Clients are passed in."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from lambdaserve.evidence import Evidence
from lambdaserve.judge import JudgeSettings, judge
from lambdaserve.records import AliasState

METRIC = "CanaryJudgeFailed"


def settings_from_env(env: Mapping[str, str]) -> JudgeSettings:
    """JudgeSettings with each field overridable as JUDGE_<FIELD> (e.g. JUDGE_MIN_ROWS)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(JudgeSettings):
        raw = env.get(f"JUDGE_{field.name.upper()}", "")
        if raw != "":
            values[field.name] = int(raw) if field.type in (int, "int") else float(raw)
    return JudgeSettings(**values)


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
