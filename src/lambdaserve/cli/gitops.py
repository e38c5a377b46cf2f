"""`lambdaserve release` and `lock`: the release path `make deploy` runs after `sam deploy`,
and the GitOps way (a committed lock file, released by CI). Both end in the same deploy and
judged rollout as `lambdaserve deploy` (cli/release.py), never a path of their own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lambdaserve.cli.context import adopt_option, services_of
from lambdaserve.cli.exit_codes import NoStackError
from lambdaserve.cli.output import alias_result, alias_text, emit, json_option, shares_text
from lambdaserve.cli.rollout import Release, RolloutOptions, rollout, rollout_options
from lambdaserve.release.errors import AlreadyServingError, NothingToReleaseError
from lambdaserve.release.pinned import LOCK_FILE, check_pinned, live_model, read_lock, write_lock
from lambdaserve.release.rollout import parse_interval, parse_steps

if TYPE_CHECKING:
    from lambdaserve.cli.context import Services


@click.command("release")
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="release the model this lock file pins (the GitOps way); default: the model live serves",
)
@click.option(
    "--check",
    is_flag=True,
    help="only say whether a release may start now (no release in flight, no canary, no "
    "drift); `make deploy` asks before `sam deploy`",
)
@click.option("--reason", default="", help="why, for the deployment history")
@rollout_options
@json_option
@adopt_option
@click.pass_context
def release_command(
    ctx: click.Context,
    /,
    lock_file: Path | None,
    check: bool,
    reason: str,
    as_json: bool,
    adopt: bool,
    judging: RolloutOptions,
) -> None:
    """Release a model on the function's current configuration ($LATEST) through the same
    path as deploy: verify, publish, golden check, judged steps if asked, alias, records.
    After `sam deploy` it carries an infrastructure change to traffic (`make deploy` runs
    it); with --lock it is the GitOps way. Nothing new to release is not a failure."""
    services = services_of(ctx)
    if check and services.stack:
        try:
            services.outputs()
        except NoStackError:  # `make deploy` creating the stack: nothing can be in flight
            click.echo(f"ready: stack {services.stack} does not exist yet (a first deploy)")
            return
    deployer = services.deployer()
    if check:
        state = deployer.ready(adopt)
        result = {"released": False, "ready": True, **alias_result(services.alias, state)}
        emit(
            result,
            as_json,
            lambda _: (
                f"ready: no release in flight, {services.alias} "
                f"serves {shares_text(state)} as recorded"
            ),
        )
        return
    release_model(services, lock_file, reason, adopt, judging, as_json)


def release_model(
    services: Services,
    lock_file: Path | None,
    reason: str,
    adopt: bool,
    judging: RolloutOptions,
    as_json: bool,
) -> None:
    """`release` without --check (also the second half of `local deploy`)."""
    deployer = services.deployer()
    pinned = read_lock(lock_file) if lock_file else live_model(deployer)
    try:
        if pinned is None:
            raise NothingToReleaseError(
                f"{services.alias} serves the template's sample model (no release yet): "
                "`lambdaserve deploy NAME VERSION` puts a registry model live"
            )
        check_pinned(services.registry(), pinned)
        why = reason or f"release {pinned.describe()}"
        if pinned.rollout and not judging.judged:  # the lock's rollout, unless the CLI says
            judging = replace(
                judging,
                steps=pinned.rollout.get("steps", judging.steps),
                interval=pinned.rollout.get("interval", judging.interval),
            )
        if judging.judged:
            chosen = Release(pinned.name, pinned.version, None, why, False, adopt)
            rollout(services, chosen, judging, as_json)
            return
        state = deployer.deploy(pinned.name, pinned.version, None, why, adopt=adopt)
    except (NothingToReleaseError, AlreadyServingError) as exc:
        state = deployer.state()
        result = {"released": False, "reason": str(exc), **alias_result(services.alias, state)}
        emit(result, as_json, lambda r: f"nothing to release: {r['reason']}")
        return
    result = {"released": True, **alias_result(services.alias, state)}
    emit(result, as_json, lambda _: alias_text(services.alias, state))


@click.command("lock")
@click.argument("name")
@click.argument("version")
@click.option(
    "--file",
    "lock_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(LOCK_FILE),
    show_default=True,
    help="the lock file to write (commit it; CI runs `make deploy LOCK=...`)",
)
@click.option("--steps", default=None, help="a judged rollout for the release: 10,50,100")
@click.option("--interval", default=None, help="per step: 30s, 5m, 1h")
@json_option
@click.pass_context
def lock_command(
    ctx: click.Context,
    name: str,
    version: str,
    lock_file: Path,
    steps: str | None,
    interval: str | None,
    as_json: bool,
) -> None:
    """Pin a published model (its sha256) and, optionally, its rollout in a lock file: the
    GitOps way, released by `lambdaserve release --lock FILE`."""
    model = services_of(ctx).registry().get(name, version)
    if steps:
        parse_steps(steps)  # refused now, not when CI releases it
    if interval:
        parse_interval(interval)
    chosen = {k: v for k, v in (("steps", steps), ("interval", interval)) if v}
    data = write_lock(lock_file, model, chosen or None)
    emit(
        {"file": str(lock_file), **data},
        as_json,
        lambda _: (
            f"{lock_file}: {model.name} v{model.version} "
            f"(sha256 {model.manifest.sha256[:12]})" + (f", rollout {chosen}" if chosen else "")
        ),
    )


COMMANDS = (release_command, lock_command)
