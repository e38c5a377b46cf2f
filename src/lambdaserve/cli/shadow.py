"""`lambdaserve shadow start/status/report/stop/promote`: a version that sees a mirrored share of
live's requests and answers no client (shadow.py, shadow_control.py, shadow_report.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from lambdaserve.cli.context import Services, insecure_option, services_of
from lambdaserve.cli.exit_codes import ShadowDisagreesError
from lambdaserve.cli.output import emit, json_option
from lambdaserve.cli.release import deploy
from lambdaserve.cli.rollout import RolloutOptions, rollout_options
from lambdaserve.judge import shadow_report
from lambdaserve.release.errors import NoShadowError
from lambdaserve.release.shadow import Shadows, read_shadow, shadow_parameter


def _shadows(services: Services) -> Shadows:
    return Shadows(
        services.deployer(),
        services.client("logs"),
        services.client("ssm"),
        services.need("log_group"),
        shadow_parameter(services.parameter_prefix()),
    )


def _recorded(services: Services) -> dict[str, Any]:
    """The shadow's record, read without building a deployer (no function, no STS call)."""
    parameter = shadow_parameter(services.parameter_prefix())
    recorded = read_shadow(services.client("ssm"), parameter)
    if recorded is None:
        raise NoShadowError("no shadow recorded: lambdaserve shadow start NAME VERSION")
    return recorded


def _state_text(s: dict[str, Any]) -> str:
    line = (
        f"shadow version {s['function_version']} ({s['model']} v{s['model_version']}) on "
        f"{s['percent']:g}% of live's requests: {s['state']} since {s['started']}"
    )
    return line + (f", stopped {s['stopped']}" if s.get("stopped") else "")


@click.group("shadow")
def shadow() -> None:
    """A version that sees a mirrored share of live's requests and answers no client."""


@shadow.command("start")
@click.argument("name")
@click.argument("version")
@click.option(
    "--percent", type=float, default=10.0, show_default=True, help="share of requests mirrored"
)
@insecure_option
@json_option
@click.pass_context
def start(
    ctx: click.Context,
    name: str,
    version: str,
    percent: float,
    insecure_skip_verify: bool,
    as_json: bool,
) -> None:
    """Publish and validate NAME VERSION as a function version, and mirror --percent of the
    requests live answers to it. The alias does not move; no client sees its answers."""
    shadows = _shadows(services_of(ctx))
    record = shadows.start(name, version, percent, insecure_skip_verify=insecure_skip_verify)
    emit(record, as_json, _state_text)


@shadow.command("status")
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The running (or last) shadow."""
    services = services_of(ctx)
    emit(_recorded(services), as_json, _state_text)


@shadow.command("report")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the HTML page")
@click.option(
    "--min-agreement",
    type=float,
    default=shadow_report.DEFAULTS["min_agreement"],
    show_default=True,
    help="agreement under this is `disagree`",
)
@click.option(
    "--min-rows",
    type=int,
    default=int(shadow_report.DEFAULTS["min_rows"]),
    show_default=True,
    help="compared rows before any verdict",
)
@json_option
@click.pass_context
def report(
    ctx: click.Context, out: Path | None, min_agreement: float, min_rows: int, as_json: bool
) -> None:
    """Agreement of the running (or last) shadow with live on the requests it saw: labels,
    probabilities, refusals and each version's latency. Exit 7 when they disagree."""
    services = services_of(ctx)
    recorded = _recorded(services)
    records = shadow_report.shadow_records(
        services.client("s3"), services.need("monitoring_bucket"), recorded, dt.datetime.now(dt.UTC)
    )
    result = {
        "shadow": recorded,
        **shadow_report.compare(records, min_agreement=min_agreement, min_rows=min_rows),
    }
    if out is not None:
        out.write_text(shadow_report.render(result), encoding="utf-8")
    emit(result, as_json, shadow_report.text)
    if result["verdict"] == "disagree":
        raise ShadowDisagreesError(f"the shadow disagrees with live: {result.get('summary', '')}")


@shadow.command("stop")
@click.option("--reason", default="stopped")
@json_option
@click.pass_context
def stop(ctx: click.Context, reason: str, as_json: bool) -> None:
    """Live stops mirroring (within 30 s); the subscription and the invoke permission go."""
    shadows = _shadows(services_of(ctx))
    emit(shadows.stop(reason), as_json, _state_text)


@shadow.command("promote")
@click.option(
    "--canary",
    type=float,
    default=10.0,
    show_default=True,
    help="the canary's first share of traffic",
)
@click.option("--reason", default="")
@json_option
@insecure_option
@rollout_options
@click.pass_context
def promote(
    ctx: click.Context,
    /,
    canary: float,
    reason: str,
    as_json: bool,
    insecure_skip_verify: bool,
    judging: RolloutOptions,
) -> None:
    """End the shadow and deploy its model as a canary (with --steps, judged step by step)."""
    services = services_of(ctx)
    shadows = _shadows(services)
    ended = shadows.stop("promoted to a canary")
    ctx.invoke(
        deploy,
        name=ended["model"],
        version=str(ended["model_version"]),
        canary=canary,
        reason=reason or f"promote shadow {ended['model']} v{ended['model_version']}",
        as_json=as_json,
        insecure_skip_verify=insecure_skip_verify,
        judging=judging,
    )


COMMANDS = [shadow]
