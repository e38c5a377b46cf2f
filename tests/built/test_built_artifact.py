"""What ships is what is tested: `sam build` for real, then the built handler in a clean
Python 3.12 process whose sys.path holds only the function folder and the layers' python/
folders, as Lambda lays out /var/task and /opt/python. No Docker, no venv site-packages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import ROOT, load_event

from lambdaserve import manifest
from lambdaserve.local.build import BuiltFunction, Invocation, invoke_isolated

pytestmark = pytest.mark.build

BUILD_DIR = ROOT / ".aws-sam" / "build"
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # function + all layers, bytes


@pytest.fixture(scope="session")
def built(sam_build: Path) -> BuiltFunction:
    return BuiltFunction.from_build(sam_build)


@pytest.fixture(scope="session")
def model_dir(built: BuiltFunction) -> Path:
    """Where /opt/model would be: the built ModelLayer's model/ folder."""
    return BUILD_DIR / "ModelLayer" / "model"


def _invoke(built: BuiltFunction, model_dir: Path, event: str) -> Invocation:
    return invoke_isolated(built, load_event(event), env={"MODEL_DIR": str(model_dir)})


def test_built_handler_answers_predict_with_200(built: BuiltFunction, model_dir: Path) -> None:
    result = _invoke(built, model_dir, "predict.json")
    assert result.response["statusCode"] == 200, result.response["body"] + result.logs
    body = json.loads(result.response["body"])
    assert len(body["predictions"]) == 2
    assert body["model"]["name"] == "retail-propensity"


def test_built_handler_answers_a_schema_violation_with_422(
    built: BuiltFunction, model_dir: Path
) -> None:
    result = _invoke(built, model_dir, "predict-invalid.json")
    assert result.response["statusCode"] == 422
    assert json.loads(result.response["body"])["status"] == 422


def test_every_module_came_from_the_build_output_not_the_venv(
    built: BuiltFunction, model_dir: Path
) -> None:
    modules = _invoke(built, model_dir, "predict.json").modules
    for name in (
        "app",
        "lambdaserve.api",
        "sklearn",
        "numpy",
        "scipy",
        "joblib",
        "aws_lambda_powertools",
    ):
        assert str(modules[name]).startswith(str(BUILD_DIR)), (name, modules[name])
    stdlib = str(Path(os.__file__).parent)
    strays = {n for n, f in modules.items() if f and not f.startswith((str(BUILD_DIR), stdlib))}
    # Only the build output and the stdlib. Powertools' package import probes the runtime's
    # botocore for its user-agent hook (the top package only); boto3 itself is never loaded.
    assert strays <= {"botocore"}, strays
    assert "boto3" not in modules


def test_built_model_layer_holds_a_bundle_made_with_the_pinned_stack(
    built: BuiltFunction, model_dir: Path
) -> None:
    bundled = manifest.read(model_dir).frameworks
    pins = dict(
        line.split("==")
        for line in (ROOT / "layers/runtime/requirements.txt").read_text().split()
        if "==" in line
    )
    assert {k: bundled[k] for k in ("scikit-learn", "numpy", "scipy", "joblib")} == {
        k: pins[k] for k in ("scikit-learn", "numpy", "scipy", "joblib")
    }
    health = json.loads(_invoke(built, model_dir, "health.json").response["body"])
    assert health["model"]["sha256"] == manifest.read(model_dir).sha256


def test_built_pretraffic_hook_imports_with_serving_and_model_layers_only(
    built: BuiltFunction,
) -> None:
    hook = BuiltFunction.from_build(BUILD_DIR, "PreTrafficHookFunction")
    assert [d.name for d in hook.layer_dirs] == ["ServingLayer", "ModelLayer"]
    event = {"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h-1"}
    # No CodeDeploy here: the hook must still get as far as reporting, and fail on the call.
    with pytest.raises(
        RuntimeError, match=r"codedeploy\.put_lifecycle_event_hook_execution_status"
    ):
        invoke_isolated(
            hook,
            event,
            env={
                "MODEL_DIR": str(BUILD_DIR / "ModelLayer" / "model"),
                "TARGET_VERSION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:f:2",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                "AWS_MAX_ATTEMPTS": "1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            },
        )


def test_serving_layer_ships_no_cli_training_or_local_stack(built: BuiltFunction) -> None:
    shipped = {p.name for p in (BUILD_DIR / "ServingLayer/python/lambdaserve").glob("*.py")}
    assert shipped.isdisjoint({"cli.py", "sample.py", "bundle.py", "local.py"})
    assert "serving.py" in shipped


def test_function_and_layers_fit_lambdas_unzipped_limit(built: BuiltFunction) -> None:
    folders = [built.code_dir, *built.layer_dirs]
    total = sum(f.stat().st_size for d in folders for f in d.rglob("*") if f.is_file())
    assert total < LAMBDA_UNZIPPED_LIMIT, f"{total:,} bytes"
