"""CLI commands about the stack itself rather than a model: region (which one, and why),
init-parameters (before the first deploy), endpoint (the URL and key), purge (what `sam delete`
keeps on purpose)."""

from __future__ import annotations

import click

from lambdaserve.cli.context import region_source, services_of
from lambdaserve.cli.output import emit, json_option
from lambdaserve.release.live_parameters import init_parameters, template_overrides
from lambdaserve.release.teardown import purge


@click.command("region")
@json_option
@click.pass_context
def region_command(ctx: click.Context, as_json: bool) -> None:
    """The AWS region every command (and `make deploy`) uses, and where it came from: --region,
    AWS_REGION, AWS_DEFAULT_REGION or the profile. No region: one line, exit 1."""
    services = services_of(ctx)
    found = {"region": services.session.region_name, "source": region_source(services.region)}
    emit(found, as_json, lambda f: f"{f['region']}")


@click.command("init-parameters")
@click.pass_context
def init_parameters_command(ctx: click.Context) -> None:
    """Create this stack's live-model SSM parameters (as "sample") before its first deploy,
    and print the `sam deploy --parameter-overrides` that name them."""
    services = services_of(ctx)
    prefix = services.parameter_prefix()
    created = init_parameters(services.client("ssm"), prefix)
    for name in created:
        click.echo(f"created {name}", err=True)
    if not created:
        click.echo(f"the parameters under {prefix} exist already", err=True)
    click.echo(" ".join(f"{k}={v}" for k, v in template_overrides(prefix).items()))


@click.command("endpoint")
@json_option
@click.pass_context
def endpoint(ctx: click.Context, as_json: bool) -> None:
    """The stack's API URL and its API key (AuthMode API_KEY), as export lines."""
    services = services_of(ctx)
    if not services.stack:
        raise click.UsageError("endpoint reads the stack's outputs: pass --stack NAME")
    outputs = services.outputs()
    found = {"url": outputs.get("ApiUrl", ""), "api_key": ""}
    if outputs.get("ApiKeyId"):
        key = services.client("apigateway").get_api_key(
            apiKey=outputs["ApiKeyId"], includeValue=True
        )
        found["api_key"] = key.get("value", "")
    emit(
        found,
        as_json,
        lambda f: (
            f"export API={f['url']}"
            + (f"\nexport KEY={f['api_key']}" if f["api_key"] else "  # AuthMode AWS_IAM: no key")
        ),
    )


@click.command("purge")
@click.option("--yes", is_flag=True, help="really delete: there is no undo for the bucket")
@click.pass_context
def purge_command(ctx: click.Context, yes: bool) -> None:
    """Delete what `sam delete` retains for this stack: the registry bucket, its model
    layers, the live-model parameters; schedule the signing key's deletion (7 days)."""
    services = services_of(ctx)
    if not services.stack:
        raise click.UsageError("purge reads the stack's outputs: pass --stack NAME")
    outputs = services.outputs()
    bucket, key = outputs.get("RegistryBucket"), outputs.get("SigningKeyArn")
    if not bucket or not key:
        raise click.ClickException(f"stack {services.stack} has no registry or key outputs")
    if not yes:
        raise click.ClickException(
            f"this deletes s3://{bucket} with every model version in it and schedules "
            f"key {key} for deletion: run again with --yes"
        )
    done = purge(
        s3=services.client("s3"),
        lambda_client=services.client("lambda"),
        ssm=services.client("ssm"),
        kms=services.client("kms"),
        bucket=bucket,
        signing_key=key,
        parameter_prefix=services.parameter_prefix(),
    )
    click.echo(
        f"deleted s3://{done.bucket} ({done.objects} object versions), "
        f"{len(done.layer_versions)} model layer versions, {len(done.parameters)} "
        f"parameters; key deletion scheduled for {done.key_deletion}"
    )


COMMANDS = (region_command, init_parameters_command, endpoint, purge_command)
