from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import click
import joblib
import numpy as np
import pytest
from click.testing import CliRunner, Result
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from lambdaserve.bundle import sample
from lambdaserve.cli.batch import failure_line
from lambdaserve.cli.local import example_body
from lambdaserve.cli.main import main
from lambdaserve.cli.output import JSON_SHAPES
from lambdaserve.cli.rollout import RolloutOptions, rolled_back_line, rollout_options
from lambdaserve.judge.canary import JudgeSettings
from lambdaserve.serving.predictor import Predictor


def test_sample_train_writes_a_loadable_bundle(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sample", "train", "--out", str(tmp_path), "--rows", "3000"])
    assert result.exit_code == 0, result.output
    assert "retail-propensity" in result.output
    assert "roc_auc=" in result.output
    assert Predictor.load(tmp_path).golden_mismatches() == []


def _user_model(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A user's own pipeline fitted on arrays, its spec in YAML and a sample CSV."""
    runner = CliRunner()
    csv_path = tmp_path / "customers.csv"
    assert (
        runner.invoke(main, ["sample", "data", "--out", str(csv_path), "--rows", "300"]).exit_code
        == 0
    )
    records, labels = sample.generate(300, seed=11)
    x = np.array(
        [[r["recency_days"], r["cart_adds_7d"], r["device"]] for r in records], dtype=object
    )
    model = make_pipeline(
        ColumnTransformer([("device", OneHotEncoder(), [2])], remainder="passthrough"),
        LogisticRegression(max_iter=500),
    ).fit(x, labels)
    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "features.yaml").write_text(
        "task: classification\n"
        "features:\n"
        "  - {name: recency_days, type: integer, minimum: 0}\n"
        "  - {name: cart_adds_7d, type: integer, minimum: 0}\n"
        "  - {name: device, type: category, categories: [desktop, mobile, tablet]}\n"
    )
    return tmp_path / "model.joblib", tmp_path / "features.yaml", csv_path


def _bundle(model: Path, spec: Path, sample_csv: Path, out: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        [
            "bundle",
            str(model),
            "--features",
            str(spec),
            "--sample",
            str(sample_csv),
            "--out",
            str(out),
            *args,
        ],
    )


def test_bundle_command_bundles_a_users_own_estimator(tmp_path: Path) -> None:
    model, spec, csv_path = _user_model(tmp_path)
    out = tmp_path / "bundle"
    result = _bundle(model, spec, csv_path, out, "--name", "buyers", "--metric", "auc=0.71")
    assert result.exit_code == 0, result.output
    written = json.loads((out / "manifest.json").read_text())
    assert written["name"] == "buyers"
    assert written["metrics"] == {"auc": 0.71}
    assert Predictor.load(out).golden_mismatches() == []


def test_bundle_command_fails_in_one_line_when_spec_and_model_disagree(tmp_path: Path) -> None:
    model, spec, csv_path = _user_model(tmp_path)
    spec.write_text("features:\n  - {name: recency_days, type: integer}\n")
    result = _bundle(model, spec, csv_path, tmp_path / "out", "--name", "buyers")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: the model was fitted on 3 features, the spec lists 1"


def test_bundle_command_rejects_a_malformed_metric(tmp_path: Path) -> None:
    model, spec, csv_path = _user_model(tmp_path)
    result = _bundle(model, spec, csv_path, tmp_path / "out", "--name", "b", "--metric", "auc")
    assert result.exit_code == 1
    assert "expected NAME=NUMBER" in result.output


def test_invoke_without_a_build_says_what_to_run(tmp_path: Path) -> None:
    event = Path(__file__).parents[2] / "events" / "predict.json"
    result = CliRunner().invoke(
        main, ["invoke", "--build-dir", str(tmp_path), "--event", str(event)]
    )
    assert result.exit_code == 1
    assert "make build" in result.output


def test_bundle_command_refuses_a_model_pickled_by_another_sklearn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.base import BaseEstimator

    model, spec, csv_path = _user_model(tmp_path)
    estimator = joblib.load(model)
    original = BaseEstimator.__getstate__
    monkeypatch.setattr(
        BaseEstimator, "__getstate__", lambda self: {**original(self), "_sklearn_version": "1.2.0"}
    )
    joblib.dump(estimator, model)
    monkeypatch.undo()
    result = _bundle(model, spec, csv_path, tmp_path / "out", "--name", "b")
    assert result.exit_code == 1
    assert "1.2.0" in result.output
    assert not (tmp_path / "out").exists()


def test_local_up_refuses_an_api_key_api_gateway_would_not_accept(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text("Resources: {}\n")
    result = CliRunner().invoke(
        main, ["local", "up", "--build-dir", str(tmp_path), "--api-key", "short"]
    )
    assert result.exit_code != 0
    assert "at least 20 characters" in result.output
    result = CliRunner().invoke(
        main, ["local", "up", "--build-dir", str(tmp_path), "--auth-mode", "COGNITO"]
    )
    assert result.exit_code == 2
    assert "API_KEY" in result.output


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _commands(command, path + " ")
        else:
            yield path, command


def test_every_command_that_prints_json_states_its_shape_once() -> None:
    """The docs' reference page is generated from JSON_SHAPES: a command with --json and no
    shape there would be an undocumented contract."""
    with_json = {
        path
        for path, command in _commands(main)
        if any(isinstance(p, click.Option) and "--json" in p.opts for p in command.params)
    }
    assert with_json == set(JSON_SHAPES)


def test_sample_data_holds_only_what_the_model_takes_unless_the_label_is_asked_for(
    tmp_path: Path,
) -> None:
    """Issue 26 #10: the label column made /predict refuse the rows as an unknown feature."""
    plain, labelled = tmp_path / "plain.csv", tmp_path / "labelled.csv"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["sample", "data", "--out", str(plain), "--rows", "5"]).exit_code == 0
    )
    args = ["sample", "data", "--out", str(labelled), "--rows", "5", "--with-label"]
    said = runner.invoke(main, args)
    assert "with their label bought_7d" in said.output
    with plain.open() as fh:
        assert next(csv.reader(fh)) == sample.FEATURE_NAMES
    with labelled.open() as fh:
        assert next(csv.reader(fh)) == [*sample.FEATURE_NAMES, "bought_7d"]


def test_a_judged_rollback_names_its_failing_checks_and_their_figures() -> None:
    """Issue 26 #8: the reason was only in `history --json`."""
    verdict = {
        "verdict": "fail",
        "summary": "input_drift 1 > 0",
        "checks": [
            {"name": "errors", "status": "pass", "value": 0.0, "threshold": 0.01, "detail": ""},
            {
                "name": "input_drift",
                "status": "fail",
                "value": 1,
                "threshold": 0,
                "detail": "drifted features: texture (missing rate 39.5% vs 12.7%)",
            },
        ],
    }
    line = rolled_back_line({"canary": "7", "last_verdict": verdict})
    assert line == (
        "the judge rolled canary version 7 back: input_drift: 1 > 0 "
        "(drifted features: texture (missing rate 39.5% vs 12.7%))"
    )


def test_a_failed_batch_run_says_the_failing_steps_message_not_its_stack_trace() -> None:
    """Issue 26 #9: a plan refused for a missing column printed the Lambda error's JSON and
    "see its manifest", and no manifest existed."""
    cause = json.dumps(
        {
            "errorType": "BatchInputError",
            "errorMessage": "in/a.csv: the header lacks the model's required columns ['device']",
            "stackTrace": ['  File "/var/task/app.py", line 40, in lambda_handler\n'],
        }
    )
    report = {"status": "FAILED", "rows_in": None, "manifest": "s3://b/out/_manifest.json"}
    line = failure_line({**report, "error": "BatchInputError", "cause": cause})
    assert line == (
        "the batch run ended FAILED: in/a.csv: the header lacks the model's required columns "
        "['device']"
    )


def test_local_up_with_a_bundle_prints_a_body_that_bundle_accepts(tmp_path: Path) -> None:
    """Issue 26 #11: the sample's example body answered 422 for the user's own model."""
    model, spec, sample_csv = _user_model(tmp_path)
    assert _bundle(model, spec, sample_csv, tmp_path / "bundle", "--name", "buyers").exit_code == 0
    body = json.loads(example_body(tmp_path / "bundle", tmp_path).read_text())
    predictor = Predictor.load(tmp_path / "bundle")
    assert len(predictor.predict(predictor.parse(body))["predictions"]) == len(body["instances"])


def test_options_handed_on_by_another_command_win_over_clicks_defaults() -> None:
    """`shadow promote` invokes deploy with its own judging options; click fills in deploy's
    defaults beside them (the e2e run failed on 'multiple values for judging')."""
    seen: list[RolloutOptions] = []

    @click.command()
    @rollout_options
    def deploy_like(judging: RolloutOptions) -> None:
        seen.append(judging)

    @click.command()
    @click.pass_context
    def promote_like(ctx: click.Context) -> None:
        ctx.invoke(
            deploy_like, judging=RolloutOptions("10,100", "1m", True, False, 2, JudgeSettings())
        )

    result = CliRunner().invoke(promote_like, [])
    assert result.exit_code == 0, result.output
    assert (seen[0].steps, seen[0].interval, seen[0].patience) == ("10,100", "1m", 2)


def test_the_local_stack_holds_its_folders_as_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`local up --bundle` with an ONNX bundle failed from `make up`'s relative build dir: the
    ONNX runtime layer's folder was relative, and workers run elsewhere."""
    from lambdaserve.local.settings import StackSettings

    monkeypatch.chdir(tmp_path)
    settings = StackSettings(build_dir=Path(".aws-sam/build"), state_dir=Path("state"))
    assert settings.build_dir == tmp_path / ".aws-sam" / "build"
    assert settings.state_dir == tmp_path / "state"
