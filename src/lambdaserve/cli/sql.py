"""`lambdaserve sql redshift|snowflake [NAME VERSION]`: the statements that make the live model
(or a named one) a SQL function in the warehouse, with its arguments in the bundle's feature
order and their types from the feature spec (serving/warehouse.py answers the calls)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import click

from lambdaserve.cli.context import services_of
from lambdaserve.cli.output import emit, json_option
from lambdaserve.release.function_versions import function_env
from lambdaserve.release.pinned import live_model
from lambdaserve.serving.warehouse import SQL_TYPES, result_kind, returns_type

if TYPE_CHECKING:
    from lambdaserve.cli.context import Services
    from lambdaserve.manifest import Manifest

# Lambda's synchronous payload limit is 6 MB: Redshift's batches stay under it.
REDSHIFT_MAX_BATCH_SIZE = "5 MB"


def _identifier(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def _manifest(services: Services, name: str | None, version: str | None) -> Manifest:
    if bool(name) != bool(version):
        raise click.UsageError("name both NAME and VERSION, or neither (the live model)")
    if not (name and version):
        pinned = live_model(services.deployer())
        if pinned is None:
            raise click.UsageError(
                "live serves the template's sample model: deploy a registry model, or name one "
                "(NAME VERSION)"
            )
        name, version = pinned.name, pinned.version
    return services.registry().get(name, version).manifest


def _arguments(manifest: Manifest, warehouse: str) -> list[dict[str, str]]:
    types = SQL_TYPES[warehouse]
    return [{"name": f.name, "type": types[f.type]} for f in manifest.features]


def _batch_rows(services: Services) -> int:
    config = services.deployer().config_of(None)
    return int(function_env(config).get("MAX_BATCH_ROWS", "10000"))


def _statement_text(found: dict[str, Any]) -> str:
    return "\n\n".join(found["statements"])


function_name_option = click.option(
    "--function-name", "sql_name", default=None, help="the SQL function's name (default: f_MODEL)"
)


@click.group("sql")
def sql() -> None:
    """The statements that make the model a SQL function in a warehouse (docs: Warehouse
    scoring). Arguments in the bundle's feature order; NULL in a required feature gives NULL."""


@sql.command("redshift")
@click.argument("name", required=False)
@click.argument("version", required=False)
@function_name_option
@click.option("--role", default=None, help="the IAM role Redshift assumes (default: the stack's)")
@json_option
@click.pass_context
def redshift(
    ctx: click.Context,
    name: str | None,
    version: str | None,
    sql_name: str | None,
    role: str | None,
    as_json: bool,
) -> None:
    """CREATE EXTERNAL FUNCTION for Amazon Redshift: a Lambda UDF on the alias `live`."""
    services = services_of(ctx)
    manifest = _manifest(services, name, version)
    role = role or services.outputs().get("RedshiftUdfRoleArn")
    if not role:
        raise click.UsageError("no role: pass --stack NAME (its RedshiftUdfRoleArn) or --role ARN")
    sql_name = sql_name or f"f_{_identifier(manifest.name)}"
    arguments = _arguments(manifest, "redshift")
    returns = returns_type(manifest, "redshift")
    target = f"{services.need('function')}:{services.alias}"
    listed = ",\n".join(f"  {a['type']}  -- {a['name']}" for a in arguments)
    statement = (
        f"-- {manifest.name} v{manifest.version}: the {result_kind(manifest)} of each row\n"
        f"CREATE OR REPLACE EXTERNAL FUNCTION {sql_name} (\n{listed}\n)\n"
        f"RETURNS {returns}\nSTABLE\nLAMBDA '{target}'\nIAM_ROLE '{role}'\n"
        f"MAX_BATCH_ROWS {_batch_rows(services)}\nMAX_BATCH_SIZE {REDSHIFT_MAX_BATCH_SIZE};"
    )
    found = {
        "function": sql_name,
        "arguments": arguments,
        "returns": returns,
        "result": result_kind(manifest),
        "statements": [statement],
    }
    emit(found, as_json, _statement_text)


@sql.command("snowflake")
@click.argument("name", required=False)
@click.argument("version", required=False)
@function_name_option
@click.option("--integration", default=None, help="the API integration's name (default: STACK)")
@json_option
@click.pass_context
def snowflake(
    ctx: click.Context,
    name: str | None,
    version: str | None,
    sql_name: str | None,
    integration: str | None,
    as_json: bool,
) -> None:
    """CREATE API INTEGRATION and CREATE EXTERNAL FUNCTION for Snowflake, through the stack's
    API (POST /snowflake), with the steps between them."""
    services = services_of(ctx)
    if not services.stack:
        raise click.UsageError("sql snowflake reads the stack's outputs: pass --stack NAME")
    manifest = _manifest(services, name, version)
    outputs = services.outputs()
    url = outputs["ApiUrl"].rstrip("/")
    account = outputs["LiveAliasArn"].split(":")[4]
    partition = outputs["LiveAliasArn"].split(":")[1]
    role = f"arn:{partition}:iam::{account}:role/{services.stack}-snowflake"
    integration = integration or _identifier(f"lambdaserve_{services.stack}")
    sql_name = sql_name or f"f_{_identifier(manifest.name)}"
    arguments = _arguments(manifest, "snowflake")
    returns = returns_type(manifest, "snowflake")
    key_line = (
        "\n  API_KEY = '<the key `lambdaserve endpoint` prints>'" if outputs.get("ApiKeyId") else ""
    )
    listed = ", ".join(f"{a['name']} {a['type']}" for a in arguments)
    statements = [
        f"-- 1. The integration (role {role} is created in step 2)\n"
        f"CREATE OR REPLACE API INTEGRATION {integration}\n"
        f"  API_PROVIDER = aws_api_gateway\n  API_AWS_ROLE_ARN = '{role}'{key_line}\n"
        f"  API_ALLOWED_PREFIXES = ('{url}/snowflake')\n  ENABLED = TRUE;",
        f"-- 2. DESCRIBE INTEGRATION {integration}; then, with its two values:\n"
        f'--    make deploy STACK={services.stack} PARAMS="SnowflakeIamUserArn='
        '<API_AWS_IAM_USER_ARN> SnowflakeExternalId=<API_AWS_EXTERNAL_ID>"',
        f"-- 3. {manifest.name} v{manifest.version}: the {result_kind(manifest)} of each row\n"
        f"CREATE OR REPLACE EXTERNAL FUNCTION {sql_name}({listed})\n"
        f"  RETURNS {returns}\n  API_INTEGRATION = {integration}\n"
        f"  MAX_BATCH_ROWS = {_batch_rows(services)}\n  AS '{url}/snowflake';",
    ]
    found = {
        "function": sql_name,
        "arguments": arguments,
        "returns": returns,
        "result": result_kind(manifest),
        "role": role,
        "integration": integration,
        "statements": statements,
    }
    emit(found, as_json, _statement_text)


COMMANDS = (sql,)
