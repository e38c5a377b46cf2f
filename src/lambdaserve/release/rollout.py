"""Automatic canary steps: deploy at the first weight, then at each interval ask the judge;
`pass` moves to the next weight (promote at 100), `fail` rolls back at once (one alias
switch), `wait` judges again until the evidence is there, or rolls back (fail closed) after
`patience` intervals without a verdict. The plan and every verdict live in the registry
bucket, beside the alias ledger, so an interrupted CLI resumes (`deploy --resume`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdaserve.judge.canary import JudgeSettings, judge
from lambdaserve.release.errors import DeployError, InvalidReleaseError
from lambdaserve.release.records import JsonObject

if TYPE_CHECKING:
    from lambdaserve.judge.evidence import Evidence
    from lambdaserve.release.deployer import Deployer

_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smh])$")


class NoRolloutError(DeployError):
    """--resume with no rollout in progress on this alias."""


def parse_interval(text: str) -> float:
    """'30s', '5m', '1h' -> seconds."""
    match = _INTERVAL.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise InvalidReleaseError(f"interval {text!r} is not like 30s, 5m or 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def parse_steps(text: str) -> list[float]:
    """'10,50,100' -> increasing weights in (0, 100], ending at 100."""
    try:
        steps = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InvalidReleaseError(f"--steps {text!r} is not a list of percentages") from None
    if (
        not steps
        or steps[-1] != 100
        or any(not 0 < s <= 100 for s in steps)
        or steps != sorted(set(steps))
    ):
        raise InvalidReleaseError(f"--steps {text!r}: increasing percentages ending at 100")
    if len(steps) < 2:
        raise InvalidReleaseError("--steps needs a canary weight before 100")
    return steps


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Plan:
    """One rollout, as stored."""

    model: str
    model_version: str
    stable: str
    canary: str
    steps: list[float]
    interval_s: float
    patience: int
    settings: dict[str, Any]
    step: int = 0
    step_started: str = ""
    state: str = "running"  # running | promoted | rolled_back
    verdicts: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What `status` and `--json` show: where it is, and the last verdict."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "stable": self.stable,
            "canary": self.canary,
            "state": self.state,
            "steps": self.steps,
            "step": self.steps[self.step],
            "step_started": self.step_started,
            "interval_s": self.interval_s,
            "last_verdict": self.verdicts[-1] if self.verdicts else None,
            "verdicts": len(self.verdicts),
        }


class PlanStore:
    """The alias's rollout plan: s3://<registry>/rollouts/<function>/<alias>.json."""

    def __init__(self, bucket: str, s3: Any, function: str, alias: str) -> None:
        self.object = JsonObject(bucket, s3, f"rollouts/{function}/{alias}.json")

    def read(self) -> Plan | None:
        data = self.object.read()
        return Plan(**data) if data is not None else None

    def write(self, plan: Plan) -> None:
        self.object.write(dataclasses.asdict(plan))


class Rollout:
    """Runs plans against one alias."""

    def __init__(
        self,
        deployer: Deployer,
        evidence: Evidence,
        store: PlanStore,
        progress: Callable[[str], None] = print,
        now: Callable[[], dt.datetime] = _now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.deployer, self.evidence, self.store = deployer, evidence, store
        self.progress, self.now, self.sleep = progress, now, sleep

    def start(
        self,
        name: str,
        version: str,
        steps: list[float],
        interval_s: float,
        settings: JudgeSettings,
        *,
        patience: int = 3,
        reason: str = "",
        insecure_skip_verify: bool = False,
        adopt: bool = False,
    ) -> Plan:
        """The first step: a verified, validated deploy at the first weight."""
        state = self.deployer.deploy(
            name,
            version,
            steps[0],
            reason or f"rollout {name} v{version} ({','.join(f'{s:g}' for s in steps)})",
            insecure_skip_verify=insecure_skip_verify,
            adopt=adopt,
        )
        (canary,) = state.weights
        plan = Plan(
            name,
            version,
            state.version,
            canary,
            steps,
            interval_s,
            patience,
            dataclasses.asdict(settings),
            step_started=self.now().isoformat(),
        )
        self.store.write(plan)
        self.progress(f"canary version {canary} at {steps[0]:g}% (stable {state.version})")
        return plan

    def resume(self) -> Plan:
        """The alias's running plan, if the alias is still where the plan left it."""
        plan = self.store.read()
        if plan is None or plan.state != "running":
            raise NoRolloutError(f"no rollout in progress on {self.deployer.alias}")
        state, _ = self.deployer.current()
        if state.version != plan.stable or plan.canary not in state.weights:
            plan.state = "abandoned"
            self.store.write(plan)
            raise NoRolloutError(
                f"{self.deployer.alias} was moved outside the rollout (now {state.to_dict()})"
            )
        return plan

    def run(self, plan: Plan) -> Plan:
        """Judge and step until promoted or rolled back."""
        settings = JudgeSettings(**plan.settings)
        recheck = min(max(plan.interval_s / 5, 1.0), 30.0)
        while plan.state == "running":
            started = dt.datetime.fromisoformat(plan.step_started)
            due = started + dt.timedelta(seconds=plan.interval_s)
            self.sleep(max((due - self.now()).total_seconds(), 0.0))
            now = self.now()
            stable, canary = self.evidence.gather(plan.stable, plan.canary, started, now)
            verdict = judge(stable, canary, settings)
            verdict |= {"time": now.isoformat(), "step": plan.steps[plan.step]}
            plan.verdicts.append(verdict)
            self.store.write(plan)
            self.progress(
                f"{plan.steps[plan.step]:g}%: {verdict['verdict']} ({verdict['summary']})"
            )
            if verdict["verdict"] == "fail":
                self._roll_back(plan, verdict, f"judge: {verdict['summary']}")
            elif verdict["verdict"] == "pass":
                self._advance(plan, verdict)
            elif (now - started).total_seconds() > plan.interval_s * plan.patience:
                why = f"judge: no verdict after {plan.patience} intervals (not enough evidence)"
                self._roll_back(plan, verdict, why)
            else:
                self.sleep(recheck)
            self.store.write(plan)
        return plan

    def _advance(self, plan: Plan, verdict: dict[str, Any]) -> None:
        nxt = plan.step + 1
        weight = plan.steps[nxt]
        if weight >= 100:
            self.deployer.promote(f"judge: pass at {plan.steps[plan.step]:g}%", judged=verdict)
            plan.state = "promoted"
            self.progress(f"promoted version {plan.canary}")
        else:
            self.deployer.step(weight, f"judge: pass at {plan.steps[plan.step]:g}%", verdict)
            self.progress(f"canary version {plan.canary} at {weight:g}%")
        plan.step, plan.step_started = nxt, self.now().isoformat()

    def _roll_back(self, plan: Plan, verdict: dict[str, Any], reason: str) -> None:
        self.deployer.rollback(plan.stable, reason, judged=verdict)
        plan.state = "rolled_back"
        self.progress(f"rolled back to version {plan.stable}: {reason}")
