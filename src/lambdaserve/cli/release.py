"""CLI commands that publish models and move the alias: publish, versions, show, deploy,
promote, rollback, status, history (`release` and `lock` are cli/gitops.py). Each builds what
it needs from the context's factory (`Services`, cli_context.py) and reports; none holds logic."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lambdaserve.alias import AliasState
from lambdaserve.cli.context import adopt_option, insecure_option, services_of
from lambdaserve.cli.output import alias_result, alias_text, emit, json_option, shares_text
from lambdaserve.cli.rollout import (
    Release,
    RolloutOptions,
    rollout,
    rollout_options,
    rollout_plan,
    rollout_text,
)

if TYPE_CHECKING:
    pass


@click.command("publish")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    default=None,
    help="claim exactly this version number (default: the next one)",
)
@json_option
@click.pass_context
def publish(ctx: click.Context, bundle_dir: Path, version: int | None, as_json: bool) -> None:
    """Verify a bundle, give it the next version in the registry, publish its layer."""
    services = services_of(ctx)
    published = services.registry(for_publish=True).publish(bundle_dir, services.caller(), version)
    emit(
        published.summary(),
        as_json,
        lambda s: (
            f"published {s['name']} v{s['version']} (sha256 {s['sha256'][:12]})\n"
            f"layer {s['layer_arn']}"
        ),
    )


@click.command("versions")
@click.argument("name")
@json_option
@click.pass_context
def versions(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the published versions of a model."""
    found = [v.summary() for v in services_of(ctx).registry().versions(name)]
    emit(
        found,
        as_json,
        lambda rows: (
            "\n".join(
                f"v{r['version']:<4} {r['published_at']}  sha256 {r['sha256'][:12]}  "
                + " ".join(f"{k}={v:.4g}" for k, v in r["metrics"].items())
                + f"\n      {r['layer_arn']}"
                for r in rows
            )
            or f"no versions of {name}"
        ),
    )


@click.command("show")
@click.argument("name")
@click.argument("version")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, version: str, as_json: bool) -> None:
    """One version: a summary, or with --json its whole manifest."""
    found = services_of(ctx).registry().get(name, version)
    emit(found.manifest.to_dict(), as_json, lambda m: _manifest_text(found.summary(), m))


@click.command("deploy")
@click.argument("name", required=False)
@click.argument("version", required=False)
@click.option(
    "--canary",
    "canary",
    type=click.FloatRange(0, 100, min_open=True, max_open=True),
    default=None,
    help="route this percentage to the new version; the rest stays",
)
@click.option("--reason", default="", help="why, for the deployment history")
@rollout_options
@json_option
@insecure_option
@adopt_option
@click.pass_context
def deploy(
    ctx: click.Context,
    /,
    name: str | None,
    version: str | None,
    canary: float | None,
    reason: str,
    as_json: bool,
    insecure_skip_verify: bool,
    adopt: bool,
    judging: RolloutOptions,
) -> None:
    """Verify a published model, pin it in a new function version, validate it, move the
    alias. With --steps, the canary judge moves it on step by step (docs: Releases)."""
    services = services_of(ctx)
    if judging.judged:
        release = Release(name, version, canary, reason, insecure_skip_verify, adopt)
        rollout(services, release, judging, as_json)
        return
    if not (name and version):
        raise click.UsageError("deploy needs NAME VERSION")
    state = services.deployer().deploy(
        name, version, canary, reason, insecure_skip_verify=insecure_skip_verify, adopt=adopt
    )
    emit(alias_result(services.alias, state), as_json, lambda _: alias_text(services.alias, state))


@click.command("promote")
@click.option("--reason", default="")
@json_option
@insecure_option
@adopt_option
@click.pass_context
def promote(
    ctx: click.Context, reason: str, as_json: bool, insecure_skip_verify: bool, adopt: bool
) -> None:
    """Verify the canary version's model again, then send all traffic to it."""
    services = services_of(ctx)
    state = services.deployer().promote(
        reason, insecure_skip_verify=insecure_skip_verify, adopt=adopt
    )
    emit(alias_result(services.alias, state), as_json, lambda _: alias_text(services.alias, state))


@click.command("rollback")
@click.option("--to", "to", default=None, help="function version (default: the previous one)")
@click.option("--reason", default="")
@click.option(
    "--break-lease",
    is_flag=True,
    help="free the lease of a release that died mid-way first (it would block 30 minutes)",
)
@json_option
@insecure_option
@click.pass_context
def rollback(
    ctx: click.Context,
    to: str | None,
    reason: str,
    break_lease: bool,
    as_json: bool,
    insecure_skip_verify: bool,
) -> None:
    """Point the alias back at the previously live version, in one call. Where the alias was
    moved outside lambdaserve, "previous" is the version lambdaserve last recorded."""
    services = services_of(ctx)
    deployer = services.deployer()
    if break_lease and deployer.lease is not None:
        broken = deployer.lease.break_lease()
        if broken:
            click.echo(
                f"broke the lease of {broken['operation']} by {broken['holder']} "
                f"(since {broken['since']})",
                err=True,
            )
    state = deployer.rollback(to, reason, insecure_skip_verify=insecure_skip_verify)
    emit(alias_result(services.alias, state), as_json, lambda _: alias_text(services.alias, state))


@click.command("status")
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the alias, its version(s) and weights, each version's model, and the rollout (its
    step and the judge's last verdict) if one is running or was the last."""
    services = services_of(ctx)
    data = services.deployer().status()
    plan = rollout_plan(services)
    data["rollout"] = plan.summary() if plan else None
    emit(data, as_json, _status_text)


@click.command("history")
@json_option
@click.pass_context
def history(ctx: click.Context, as_json: bool) -> None:
    """Every alias change: when, who, from, to, model version, why; and, on stderr, a move of
    the alias that lambdaserve did not make."""
    deployer = services_of(ctx).deployer()
    entries = deployer.history_entries()
    emit(
        entries,
        as_json,
        lambda rows: "\n".join(_history_line(e) for e in rows) or "no deployments yet",
    )
    drifted = deployer.drift(*deployer.current())
    if drifted:
        click.echo(f"DRIFT: {drifted['summary']} (not in this history)", err=True)


def _history_line(entry: dict[str, Any]) -> str:
    before = shares_text(AliasState.from_dict(entry["from"])) if entry.get("from") else "nothing"
    after = shares_text(AliasState.from_dict(entry["to"]))
    return (
        f"{entry['time']}  {before} -> {after}  model v{entry['model_version']}  "
        f"{entry['reason']}  ({entry['caller']})"
    )


def _manifest_text(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    features = ", ".join(f"{f['name']}:{f['type']}" for f in manifest["features"])
    metrics = " ".join(f"{k}={v:.4g}" for k, v in manifest["metrics"].items())
    return "\n".join(
        [
            f"{manifest['name']} v{manifest['version']}  {manifest['estimator']} "
            f"({manifest['task']})",
            f"  sha256     {manifest['sha256']}",
            f"  published  {summary['published_at']} by {summary['published_by']}",
            f"  layer      {summary['layer_arn']}",
            f"  features   {features}",
            *([f"  classes    {manifest['classes']}"] if manifest.get("classes") else []),
            *([f"  metrics    {metrics}"] if metrics else []),
            f"  golden     {len(manifest['golden_examples'])} examples",
        ]
    )


def _status_text(status: dict[str, Any]) -> str:
    lines = [f"{status['function']}:{status['alias']}"]
    for v in status["versions"]:
        model = v["model"]
        lines.append(
            f"  version {v['version']:<4} {v['weight']:>7.2%}  {model['name']} "
            f"v{model['version'] or '-'}  sha256 {(model['sha256'] or '-')[:12]}"
        )
        lines += [f"      layer {arn}" for arn in v["layers"]]
    if status.get("rollout"):
        lines.append("  " + rollout_text(status["rollout"]).replace("\n", "\n  "))
    if status.get("drift"):
        lines.append(f"  DRIFT: {status['drift']['summary']}")
    return "\n".join(lines)


COMMANDS = (
    publish,
    versions,
    show,
    deploy,
    promote,
    rollback,
    status,
    history,
)
