"""`lambdaserve sample` and `lambdaserve bundle`: making bundles on this machine (the sample
model, or the user's own fitted estimator) with every proof the bundle room makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lambdaserve.bundle.make import BundleError
from lambdaserve.cli.output import emit, json_option
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
        + _memory_line(manifest)
    )


def _memory_line(manifest: Any) -> str:
    memory = manifest.memory
    if not memory:
        return ""
    return (
        f"\nloaded, the model takes {memory['model_bytes'] / 2**20:,.1f} MB: serve it with "
        f"MemorySize {memory['memory_size_mb']} MB or more"
    )


def bundled(manifest: Any, out: Path) -> dict[str, Any]:
    """The `--json` shape of what bundle and sample train wrote."""
    return {
        "out": str(out),
        "name": manifest.name,
        "estimator": manifest.estimator,
        "task": manifest.task,
        "features": len(manifest.features),
        "sha256": manifest.sha256,
        "metrics": manifest.metrics,
        "golden_examples": len(manifest.golden_examples),
        "engine": manifest.engine,
        "parity": manifest.parity,
        "memory": manifest.memory,
    }


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


@click.group()
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
@json_option
def sample_train(out: Path, rows: int, seed: int, engine: str, as_json: bool) -> None:
    """Train the sample model on seeded synthetic data and write its bundle."""
    from lambdaserve.bundle import sample as sample_model
    from lambdaserve.bundle.make import BundleError

    try:
        manifest = sample_model.train(out, rows=rows, seed=seed, engine=engine)
    except BundleError as exc:
        _fail(str(exc))
    emit(bundled(manifest, out), as_json, lambda _: _summary(manifest, out))


@sample.command("data")
@click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="CSV file to write"
)
@click.option("--rows", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=int, default=11, show_default=True)
@click.option(
    "--with-label",
    is_flag=True,
    help="add the label column bought_7d (for training; /predict refuses it as unknown)",
)
def sample_data(out: Path, rows: int, seed: int, with_label: bool) -> None:
    """Write synthetic customers as CSV: a --sample for `lambdaserve bundle`, or rows to score
    (batch, /predict). --with-label adds the truth, `bought_7d`, which the model never sees."""
    from lambdaserve.bundle import sample as sample_model

    sample_model.write_csv(out, rows, seed, with_label=with_label)
    label = " with their label bought_7d" if with_label else ""
    click.echo(f"wrote {rows} rows{label} to {out}")


@click.command("bundle")
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
@json_option
def bundle_cmd(
    model_file: Path,
    name: str,
    spec_file: Path,
    sample_csv: Path,
    out: Path,
    metrics: tuple[str, ...],
    engine: str,
    category_codes: bool,
    as_json: bool,
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
    emit(bundled(manifest, out), as_json, lambda _: _summary(manifest, out))


COMMANDS = [sample, bundle_cmd]
