"""`lambdaserve deploy --steps ... [--wait]` and `deploy --resume`: a canary moved step by step
by the judge (rollout.py), with the evidence read where AWS keeps it (evidence.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from lambdaserve.cli.exit_codes import RolledBackError
from lambdaserve.cli.output import emit
from lambdaserve.judge.canary import JudgeSettings
from lambdaserve.judge.evidence import Evidence
from lambdaserve.monitor.run import registry_manifests
from lambdaserve.monitor.window import CaptureReader
from lambdaserve.release.function_versions import function_env
from lambdaserve.release.rollout import PlanStore, Rollout, parse_interval, parse_steps

if TYPE_CHECKING:
    from lambdaserve.cli.context import Services
    from lambdaserve.release.rollout import Plan

_JUDGE = JudgeSettings()


THRESHOLDS = {
    "min_requests": "canary invocations before errors are compared",
    "min_rows": "captured rows of each version before predictions are compared",
    "max_error_increase": "canary error rate minus stable's",
    "max_p99_ratio": "canary p99 over stable p99 (plus 20 ms)",
    "max_prediction_shift": "Wasserstein-1 of the canary's scores against the stable's",
    "max_class_mix_shift": "JS distance of the canary's predicted classes against the stable's",
    "max_baseline_shift": "PSI/JS of the canary's outputs against its bundle's",
    "max_drifted_features": "canary input features drifted from its bundle's baseline",
}


@dataclass(frozen=True)
class RolloutOptions:
    """What `--steps`, `--interval`, `--wait`, `--resume`, `--patience` and the judge's
    thresholds said, as one value (a command gets it as `judging`)."""

    steps: str | None
    interval: str
    wait: bool
    resume: bool
    patience: int
    judge: JudgeSettings

    @classmethod
    def none(cls) -> RolloutOptions:
        """No judged rollout: the alias moves at once (the options' defaults)."""
        return cls(None, "5m", False, False, 3, JudgeSettings())

    @property
    def judged(self) -> bool:
        """A judged rollout was asked for (or the one in progress is to be followed)."""
        return bool(self.steps or self.resume)


def rollout_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The step plan, the interval and the judge's thresholds (defaults: judge.JudgeSettings),
    handed to the command as one `RolloutOptions` named `judging`."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        judge = JudgeSettings(**{name: kwargs.pop(name) for name in THRESHOLDS})
        chosen = RolloutOptions(
            steps=kwargs.pop("steps"),
            interval=kwargs.pop("interval"),
            wait=kwargs.pop("wait"),
            resume=kwargs.pop("resume"),
            patience=kwargs.pop("patience"),
            judge=judge,
        )
        # Another command handing its own options on (`shadow promote` invokes deploy): those
        # win over the defaults click filled in.
        given = kwargs.pop("judging", None)
        return fn(*args, judging=given or chosen, **kwargs)

    options = [
        click.option("--steps", default=None, help="canary weights to step through: 10,50,100"),
        click.option("--interval", default="5m", show_default=True, help="per step: 30s, 5m, 1h"),
        click.option("--wait", is_flag=True, help="follow it until promoted or rolled back"),
        click.option("--resume", is_flag=True, help="follow the rollout in progress"),
        click.option(
            "--patience",
            type=click.IntRange(min=1),
            default=3,
            show_default=True,
            help="intervals a step may wait for evidence before it is rolled back",
        ),
    ]
    for name, help_text in THRESHOLDS.items():
        default = getattr(_JUDGE, name)
        kind = click.IntRange(min=0) if isinstance(default, int) else click.FloatRange(min=0)
        flag = "--" + name.replace("_", "-")
        options.append(
            click.option(flag, type=kind, default=default, show_default=True, help=help_text)
        )
    for option in reversed(options):
        command = option(command)
    return command


def _rollout(services: Services) -> Rollout:
    deployer = services.deployer()
    s3 = services.client("s3")
    manifests = registry_manifests(s3, services.need("bucket"))

    def profile_of(version: str) -> dict[str, Any] | None:
        env = function_env(deployer.config_of(version))
        return manifests(env["MODEL_NAME"], env["MODEL_VERSION"]).baseline_profile

    evidence = Evidence(
        CaptureReader(s3, services.need("monitoring_bucket")),
        services.client("cloudwatch"),
        deployer.function,
        deployer.alias,
        profile_of,
    )
    store = PlanStore(services.need("bucket"), s3, deployer.function, deployer.alias)
    return Rollout(deployer, evidence, store, progress=lambda line: click.echo(line, err=True))


def rollout_plan(services: Services) -> Plan | None:
    """The alias's last rollout plan, if any."""
    deployer = services.deployer()
    store = PlanStore(
        services.need("bucket"), services.client("s3"), deployer.function, deployer.alias
    )
    return store.read()


def rollout_text(plan: dict[str, Any]) -> str:
    last = plan["last_verdict"]
    text = (
        f"rollout of {plan['model']} v{plan['model_version']}: {plan['state']}, canary version "
        f"{plan['canary']} at {plan['step']:g}% of {','.join(f'{s:g}' for s in plan['steps'])}"
    )
    return text + (f"\nlast verdict: {last['verdict']} ({last['summary']})" if last else "")


@dataclass(frozen=True)
class Release:
    """What a deploy names: the model version, the first canary share, why, and whether the
    trust checks are skipped."""

    name: str | None
    version: str | None
    canary: float | None
    reason: str
    insecure: bool
    adopt: bool = False


def rollout(services: Services, release: Release, options: RolloutOptions, as_json: bool) -> None:
    """Start (or resume) a judged rollout; exit 8 if the judge rolled it back."""
    name, version, canary = release.name, release.version, release.canary
    if options.resume:
        if name or version:
            raise click.UsageError("--resume takes no NAME VERSION: it follows the alias's rollout")
        plan: Plan = _rollout(services).resume()
        follow = True
    else:
        if not (name and version):
            raise click.UsageError("deploy needs NAME VERSION")
        steps = parse_steps(options.steps or "")
        if canary is not None and canary != steps[0]:
            raise click.UsageError(f"--canary {canary:g} is not the first of --steps")
        interval = parse_interval(options.interval)
        roll = _rollout(services)
        plan = roll.start(
            name,
            version,
            steps,
            interval,
            options.judge,
            patience=options.patience,
            reason=release.reason,
            insecure_skip_verify=release.insecure,
            adopt=release.adopt,
        )
        follow = options.wait
    if follow:
        plan = _rollout(services).run(plan)
    emit(plan.summary(), as_json, rollout_text)
    if plan.state == "rolled_back":
        raise RolledBackError(rolled_back_line(plan.summary()))


def failing_checks(verdict: dict[str, Any] | None) -> list[str]:
    """Each failing check of a verdict with its figure: `input_drift: 1 > 0 (drifted features:
    texture (missing rate 39.5% vs 12.7%))`."""
    if not verdict:
        return []
    return [
        f"{c['name']}: {c['value']} > {c['threshold']}"
        + (f" ({c['detail']})" if c["detail"] else "")
        for c in verdict.get("checks", [])
        if c["status"] == "fail"
    ] or [str(verdict.get("summary", ""))]


def rolled_back_line(plan: dict[str, Any]) -> str:
    """Why the judge rolled the canary back, with the failing checks and their figures."""
    why = "; ".join(failing_checks(plan["last_verdict"])) or "no verdict"
    return f"the judge rolled canary version {plan['canary']} back: {why}"
