"""The `lambdaserve` command: a few lines over the library per command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lambdaserve.bundle.make import BundleError
from lambdaserve.cli import batch as cli_batch
from lambdaserve.cli import capacity as cli_capacity
from lambdaserve.cli import context as cli_context
from lambdaserve.cli import local as cli_local
from lambdaserve.cli import monitor as cli_monitor
from lambdaserve.cli import release as cli_release
from lambdaserve.cli import shadow as cli_shadow
from lambdaserve.cli import stack as cli_stack
from lambdaserve.cli.local import build_dir_option
from lambdaserve.manifest import ManifestError

_FAILURES = (BundleError, ManifestError, OSError)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _summary(manifest: Any, out: Path) -> str:
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in manifest.metrics.items())
    return (
        f"bundled {manifest.name} ({manifest.estimator}, {manifest.task}, "
        f"{len(manifest.features)} features) into {out}\n"
        f"sha256 {manifest.sha256}\n"
        + (f"metrics {metrics}\n" if metrics else "")
        + f"{len(manifest.golden_examples)} golden examples recorded\n"
        + _engine_line(manifest)
    )


def _engine_line(manifest: Any) -> str:
    """Which engine serves, and the parity proof's figures or why ONNX was refused."""
    proof = manifest.parity or {}
    if manifest.engine == "onnx":
        worst = proof.get("max_probability_difference", proof.get("max_relative_difference"))
        return (
            f"engine onnx: parity proven on {proof.get('rows'):,} rows "
            f"({proof.get('sample_rows'):,} sample, {proof.get('generated_rows'):,} generated), "
            f"0 differing, largest difference {worst:.2g} (tolerance {proof.get('tolerance')})"
        )
    if proof.get("reason"):
        return f"engine sklearn: ONNX refused, {proof['reason']}"
    return "engine sklearn"


@click.group(cls=cli_context.Commands)
@click.version_option(package_name="lambdaserve")
@cli_context.location_options
@click.pass_context
def main(ctx: click.Context, /, **locations: Any) -> None:
    """Ship scikit-learn models to AWS Lambda: bundle, run, deploy, roll back."""
    cli_context.configure(ctx, **locations)


@main.group()
def sample() -> None:
    """The synthetic retail purchase-propensity model."""


@sample.command("train")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="folder to write model.joblib and manifest.json into",
)
@click.option("--rows", type=click.IntRange(min=1000), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--engine",
    type=click.Choice(["sklearn", "onnx"]),
    default="sklearn",
    show_default=True,
    help="onnx: the recipe that converts (categories as codes), proven and bundled for ONNX",
)
def sample_train(out: Path, rows: int, seed: int, engine: str) -> None:
    """Train the sample model on seeded synthetic data and write its bundle."""
    from lambdaserve.bundle import sample as sample_model
    from lambdaserve.bundle.make import BundleError

    try:
        manifest = sample_model.train(out, rows=rows, seed=seed, engine=engine)
    except BundleError as exc:
        _fail(str(exc))
    click.echo(_summary(manifest, out))


@sample.command("data")
@click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="CSV file to write"
)
@click.option("--rows", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=int, default=11, show_default=True)
def sample_data(out: Path, rows: int, seed: int) -> None:
    """Write synthetic customers as CSV (a --sample for `lambdaserve bundle`)."""
    from lambdaserve.bundle import sample as sample_model

    sample_model.write_csv(out, rows, seed)
    click.echo(f"wrote {rows} rows to {out}")


@main.command("bundle")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="model name in the registry, e.g. churn")
@click.option(
    "--features",
    "spec_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="feature spec, JSON or YAML",
)
@click.option(
    "--sample",
    "sample_csv",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of representative rows: golden examples and drift baseline",
)
@click.option("--out", "out", type=click.Path(path_type=Path), required=True)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME=VALUE",
    help="a training metric to record, repeatable",
)
@click.option(
    "--engine",
    type=click.Choice(["sklearn", "onnx", "auto"]),
    default="sklearn",
    show_default=True,
    help="onnx: convert and prove parity, or refuse; auto: onnx if it passes, else sklearn",
)
@click.option(
    "--category-codes",
    is_flag=True,
    help="the model was fitted on category codes (lambdaserve.serving.engines.category_codes)",
)
def bundle_cmd(
    model_file: Path,
    name: str,
    spec_file: Path,
    sample_csv: Path,
    out: Path,
    metrics: tuple[str, ...],
    engine: str,
    category_codes: bool,
) -> None:
    """Bundle your own fitted estimator (a joblib file) with its feature spec."""
    from lambdaserve.bundle.make import (
        load_estimator,
        load_feature_spec,
        make_bundle,
        read_sample_csv,
    )
    from lambdaserve.manifest import parse_features

    parsed: dict[str, float] = {}
    for item in metrics:
        key, _, value = item.partition("=")
        try:
            parsed[key] = float(value)
        except ValueError:
            _fail(f"--metric {item!r}: expected NAME=NUMBER")
    try:
        spec = load_feature_spec(spec_file)
        rows = read_sample_csv(sample_csv, parse_features(spec["features"]))
        estimator = load_estimator(model_file)
        manifest = make_bundle(
            estimator,
            name=name,
            spec=spec,
            sample_rows=rows,
            out_dir=out,
            metrics=parsed,
            engine=engine,
            category_input="codes" if category_codes else "raw",
        )
    except _FAILURES as exc:
        _fail(str(exc))
    click.echo(_summary(manifest, out))


@main.command("invoke")
@build_dir_option
@click.option(
    "--event",
    "event_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--function", "function", default="PredictFunction", show_default=True)
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="serve this bundle instead of the built ModelLayer (pins its name, version, sha256)",
)
def invoke_cmd(build_dir: Path, event_file: Path, function: str, model_dir: Path | None) -> None:
    """Run the built handler on an event file in a clean process, as Lambda would (no Docker)."""
    from lambdaserve.local.runtime import BuiltFunction, invoke_isolated

    if not (build_dir / "template.yaml").exists():
        _fail(f"no build in {build_dir}: run `make build` (sam build) first")
    built = BuiltFunction.from_build(build_dir, function)
    model = model_dir or build_dir / "ModelLayer" / "model"
    env = {"MODEL_DIR": str(model.resolve())}
    if model_dir is not None:
        env |= _pins_of(model_dir)
    event = json.loads(event_file.read_text(encoding="utf-8"))
    result = invoke_isolated(built, event, env=env)
    sys.stderr.write(result.logs + ("\n" if result.logs else ""))
    click.echo(
        f"REPORT Init Duration: {result.init_seconds * 1000:.1f} ms  "
        f"Duration: {result.duration_seconds * 1000:.1f} ms",
        err=True,
    )
    click.echo(json.dumps(result.response, indent=2))


def _pins_of(bundle_dir: Path) -> dict[str, str]:
    """What a deploy would pin for this bundle: its name, version and sha256, so the built
    template's own (the sample's) do not refuse it. An unreadable manifest sets nothing: the
    handler then answers 503 with the reason, as it would in Lambda."""
    from lambdaserve import manifest as manifest_io
    from lambdaserve.serving.predictor import ExpectedModel

    try:
        return ExpectedModel.of(manifest_io.read(bundle_dir)).env()
    except (ManifestError, OSError):
        return {}


for command in (
    *cli_local.COMMANDS,
    *cli_capacity.COMMANDS,
    *cli_release.COMMANDS,
    *cli_stack.COMMANDS,
    *cli_batch.COMMANDS,
    *cli_monitor.COMMANDS,
    *cli_shadow.COMMANDS,
):
    main.add_command(command)
