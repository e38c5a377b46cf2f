"""`lambdaserve batch`: score S3 data with the model `live` serves (or a named one) on the
stack's BatchScoring state machine, and report runs."""

from __future__ import annotations

import json
from typing import Any

import click

from lambdaserve.batch.errors import BatchRunFailedError
from lambdaserve.batch.io import BatchInputError
from lambdaserve.batch.job import Job
from lambdaserve.batch.runs import BatchRuns
from lambdaserve.cli.context import insecure_option, services_of
from lambdaserve.cli.output import emit, json_option
from lambdaserve.release.function_versions import VersionPublisher
from lambdaserve.release.trust_gate import TrustGate


def _text(report: dict[str, Any]) -> str:
    lines = [f"{report['execution_arn']}: {report['status']}"]
    if report["rows_in"] is not None:
        lines.append(
            f"rows in {report['rows_in']:,} = scored {report['rows_scored']:,} + rejected "
            f"{report['rows_rejected']:,}, in {report['parts']} part(s)"
        )
        lines += [f"  output  {uri}" for uri in report["outputs"]]
        lines += [f"  rejects {uri}" for uri in report["rejects"]]
        lines.append(f"  manifest {report['manifest']}")
    if report.get("error"):
        lines.append(f"error: {cause_of(report)}")
    return "\n".join(lines)


def cause_of(report: dict[str, Any]) -> str:
    """Why a run failed, in one line: the failing step's own message (a Lambda error's `cause`
    is its JSON with a stack trace; only the message is for people)."""
    cause = report.get("cause") or ""
    try:
        found = json.loads(cause)
    except ValueError:
        found = None
    if isinstance(found, dict) and found.get("errorMessage"):
        return str(found["errorMessage"])
    return cause or str(report.get("error") or "no cause recorded")


def failure_line(report: dict[str, Any]) -> str:
    """The one line of a run that did not complete; its manifest named only if it has one."""
    line = f"the batch run ended {report['status']}: {cause_of(report)}"
    if report.get("rows_in") is not None:
        line += f" (its manifest: {report['manifest']})"
    return line


def _runs(ctx: click.Context) -> BatchRuns:
    services = services_of(ctx)
    return BatchRuns(
        services.client("stepfunctions"),
        services.client("s3"),
        services.need("batch_state_machine"),
    )


def _finish(report: dict[str, Any], as_json: bool) -> None:
    emit(report, as_json, _text)
    if report["status"] in ("FAILED", "TIMED_OUT", "ABORTED"):
        raise BatchRunFailedError(failure_line(report))


@click.group("batch")
def batch() -> None:
    """Score CSV / JSON Lines data in S3 (Step Functions Distributed Map)."""


@batch.command("score")
@click.argument("input_uri")
@click.argument("output_uri")
@click.argument("model_name", metavar="NAME", required=False)
@click.argument("model_version", metavar="VERSION", required=False)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="default: by name")
@click.option("--id-column", help="copy only this input column to the output")
@click.option("--part-mb", type=click.FloatRange(min=0.01), default=64.0, show_default=True)
@click.option("--chunk-rows", type=click.IntRange(min=1), default=5_000, show_default=True)
@click.option("--wait", is_flag=True, help="follow the run; exit 6 if it does not complete")
@json_option
@insecure_option
@click.pass_context
def score(
    ctx: click.Context,
    input_uri: str,
    output_uri: str,
    fmt: str | None,
    id_column: str | None,
    model_name: str | None,
    model_version: str | None,
    part_mb: float,
    chunk_rows: int,
    wait: bool,
    as_json: bool,
    insecure_skip_verify: bool,
) -> None:
    """Score INPUT_URI (an object or a prefix) into OUTPUT_URI with the model `live` serves,
    or with the published model NAME VERSION."""
    if (model_name is None) != (model_version is None):
        raise click.UsageError("name a model as NAME VERSION (both), or neither for live's")
    raw: dict[str, Any] = {"input": input_uri, "output": output_uri, "format": fmt}
    raw["id_column"] = id_column
    raw |= {"part_mb": part_mb, "chunk_rows": chunk_rows}
    try:
        job = Job.from_dict({k: v for k, v in raw.items() if v is not None})
    except BatchInputError as exc:
        raise click.UsageError(str(exc)) from None
    if model_name and model_version:
        function = _pin(ctx, model_name, model_version, insecure_skip_verify)
        job = Job(**{**job.to_dict(), "function": function})
    runs = _runs(ctx)
    arn = runs.start(job)
    click.echo(f"started {arn}", err=True)
    if not wait:
        emit(runs.describe(arn), as_json, _text)
        return
    _finish(runs.wait(arn, lambda line: click.echo(line, err=True)), as_json)


def _pin(ctx: click.Context, name: str, version: str, insecure: bool) -> str:
    """A batch function version that pins this registry model, verified as deploy verifies."""
    services = services_of(ctx)
    lam, registry = services.client("lambda"), services.registry()
    function = services.need("batch_function")
    model = registry.get(name, version)
    latest = dict(lam.get_function_configuration(FunctionName=function))
    progress = lambda line: click.echo(line, err=True)  # noqa: E731
    gate = TrustGate(
        lam,
        registry,
        function,
        services.client("kms"),
        services.signing_key,
        services.outputs().get("SigningKeyArn"),
        progress,
    )
    verification = gate.model(model, latest, insecure)
    number = VersionPublisher(lam, registry, function, progress).publish(
        model, latest, verification
    )
    return f"{latest['FunctionArn']}:{number}"


@batch.command("status")
@click.argument("execution_arn")
@json_option
@click.pass_context
def status(ctx: click.Context, execution_arn: str, as_json: bool) -> None:
    """A run started here or elsewhere: its status, counts, outputs and rejects."""
    _finish(_runs(ctx).describe(execution_arn), as_json)


COMMANDS = (batch,)
__all__ = ["COMMANDS", "BatchRunFailedError"]
