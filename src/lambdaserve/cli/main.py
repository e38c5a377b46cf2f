"""The `lambdaserve` command: a few lines over the library per command."""

from __future__ import annotations

from typing import Any

import click

from lambdaserve.cli import batch as cli_batch
from lambdaserve.cli import bundle as cli_bundle
from lambdaserve.cli import capacity as cli_capacity
from lambdaserve.cli import context as cli_context
from lambdaserve.cli import gitops as cli_gitops
from lambdaserve.cli import local as cli_local
from lambdaserve.cli import monitor as cli_monitor
from lambdaserve.cli import release as cli_release
from lambdaserve.cli import shadow as cli_shadow
from lambdaserve.cli import sql as cli_sql
from lambdaserve.cli import stack as cli_stack
from lambdaserve.cli.exit_codes import Commands


@click.group(cls=Commands)
@click.version_option(package_name="lambdaserve")
@cli_context.location_options
@click.option(
    "--region",
    default=None,
    help="AWS region; else AWS_REGION, AWS_DEFAULT_REGION, the profile's (the AWS CLI's order)",
)
@click.pass_context
def main(ctx: click.Context, /, **locations: Any) -> None:
    """Ship scikit-learn models to AWS Lambda: bundle, run, deploy, roll back."""
    cli_context.configure(ctx, **locations)


for command in (
    *cli_bundle.COMMANDS,
    *cli_local.COMMANDS,
    *cli_capacity.COMMANDS,
    *cli_release.COMMANDS,
    *cli_gitops.COMMANDS,
    *cli_stack.COMMANDS,
    *cli_batch.COMMANDS,
    *cli_monitor.COMMANDS,
    *cli_shadow.COMMANDS,
    *cli_sql.COMMANDS,
):
    main.add_command(command)
