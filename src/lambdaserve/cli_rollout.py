"""`lambdaserve deploy --steps ... [--wait]` and `deploy --resume`: a canary moved step by step
by the judge (rollout.py), with the evidence read where AWS keeps it (evidence.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from lambdaserve.cli_context import Refused, emit, run
from lambdaserve.evidence import Evidence
from lambdaserve.judge import JudgeSettings
from lambdaserve.monitor import CaptureReader, registry_manifests
from lambdaserve.rollout import PlanStore, Rollout, parse_interval, parse_steps
from lambdaserve.versions import function_env

if TYPE_CHECKING:
    from lambdaserve.cli_context import Services
    from lambdaserve.rollout import Plan

ROLLED_BACK_EXIT = 8
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


def rollout_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The step plan, the interval and the judge's thresholds (defaults: judge.JudgeSettings)."""
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
        fn = option(fn)
    return fn


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
    return PlanStore(services.need("bucket"), services.client("s3"), deployer.function,
                     deployer.alias).read()  # fmt: skip


def rollout_text(plan: dict[str, Any]) -> str:
    last = plan["last_verdict"]
    text = (
        f"rollout of {plan['model']} v{plan['model_version']}: {plan['state']}, canary version "
        f"{plan['canary']} at {plan['step']:g}% of {','.join(f'{s:g}' for s in plan['steps'])}"
    )
    return text + (f"\nlast verdict: {last['verdict']} ({last['summary']})" if last else "")


def rollout(services: Services, name: str | None, version: str | None, canary: float | None,
            reason: str, insecure: bool, as_json: bool, **given: Any) -> None:  # fmt: skip
    """Start (or resume) a judged rollout; exit 8 if the judge rolled it back."""
    if given["resume"]:
        if name or version:
            raise click.UsageError("--resume takes no NAME VERSION: it follows the alias's rollout")
        plan: Plan = run(lambda: _rollout(services).resume())
        follow = True
    else:
        if not (name and version):
            raise click.UsageError("deploy needs NAME VERSION")
        steps = run(lambda: parse_steps(given["steps"]))
        if canary is not None and canary != steps[0]:
            raise click.UsageError(f"--canary {canary:g} is not the first of --steps")
        interval = run(lambda: parse_interval(given["interval"]))
        settings = JudgeSettings(**{k: given[k] for k in THRESHOLDS})
        roll = _rollout(services)
        plan = run(lambda: roll.start(name, version, steps, interval, settings,
                                      patience=given["patience"], reason=reason,
                                      insecure_skip_verify=insecure))  # fmt: skip
        follow = given["wait"]
    if follow:
        plan = run(lambda: _rollout(services).run(plan))
    emit(plan.summary(), as_json, rollout_text)
    if plan.state == "rolled_back":
        raise Refused(
            "the judge rolled the canary back: see `lambdaserve history`", ROLLED_BACK_EXIT
        )
