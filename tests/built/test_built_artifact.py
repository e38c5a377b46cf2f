"""What ships is what is tested: `sam build` for real, then the built handler in a clean
Python 3.12 process whose sys.path holds only the function folder and the layers' python/
folders, as Lambda lays out /var/task and /opt/python. No Docker, no venv site-packages."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import ROOT, load_event
from zoo import ZOO, assert_same_answers

from lambdaserve import manifest
from lambdaserve.bundle.make import make_bundle
from lambdaserve.cli.main import main
from lambdaserve.local.runtime import (
    BuiltFunction,
    Invocation,
    invoke_isolated,
)

pytestmark = pytest.mark.build

BUILD_DIR = ROOT / ".aws-sam" / "build"
SIZE_BUDGET = 170_000_000  # function + all layers, unzipped bytes
SRC = ROOT / "src" / "lambdaserve"
SHIPPED = ("shared", "serving", "batch", "monitor")  # the rooms a function needs


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


def test_built_handler_freezes_what_init_made_out_of_the_collectors_way(
    built: BuiltFunction, model_dir: Path
) -> None:
    # As Lambda does, the local runtime sets AWS_EXECUTION_ENV; the handler's init then ends
    # with gc.freeze(), so a full collection does not walk the modules and the model mid-request.
    result = _invoke(built, model_dir, "predict.json")
    assert result.response["statusCode"] == 200
    assert result.frozen > 50_000, result.frozen


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
        "lambdaserve.serving.api",
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
    # The SnapStart hooks module is the runtime's own (/var/runtime on Lambda).
    assert strays <= {"botocore", "snapshot_restore_py"}, strays
    # Nothing a request does not need: no boto3, no pandas, no X-Ray SDK unless asked for.
    assert not {"boto3", "pandas", "aws_xray_sdk.core", "pydantic"} & set(modules)


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


def test_serving_layer_is_the_current_source_not_a_stale_cache(built: BuiltFunction) -> None:
    layer = BUILD_DIR / "ServingLayer/python/lambdaserve"
    shipped = sorted(p.relative_to(layer) for p in layer.rglob("*.py"))
    assert shipped
    for module in shipped:
        assert (layer / module).read_bytes() == (SRC / module).read_bytes(), module
    handler = (BUILD_DIR / "PredictFunction/app.py").read_bytes()
    assert handler == (ROOT / "functions/predict/app.py").read_bytes()


def test_serving_layer_is_the_shipped_rooms_whole_and_nothing_else(built: BuiltFunction) -> None:
    # What ships is a set of folders (src/Makefile: SHIPPED_ROOMS) plus the root contracts:
    # every module of those rooms is in the layer, and no module of any other room is.
    layer = BUILD_DIR / "ServingLayer/python/lambdaserve"
    shipped = {p.relative_to(layer).as_posix() for p in layer.rglob("*.py")}
    expected = {
        p.relative_to(SRC).as_posix() for room in SHIPPED for p in (SRC / room).glob("*.py")
    }
    expected |= {f"{name}.py" for name in ("__init__", "manifest", "problem", "alias")}
    assert shipped == expected, shipped ^ expected
    unshipped = {p.parent.name for p in SRC.glob("*/__init__.py")} - set(SHIPPED)
    assert unshipped == {"cli", "local", "release", "registry", "bundle", "judge"}
    assert not any(name.split("/")[0] in unshipped for name in shipped)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_function_and_layers_fit_the_170_mb_budget(built: BuiltFunction) -> None:
    # 65% of Lambda's 262,144,000-byte unzipped limit: room for a user's own packages.
    sizes = {d.name: _folder_bytes(d) for d in [built.code_dir, *built.layer_dirs]}
    assert sum(sizes.values()) <= SIZE_BUDGET, sizes


def test_a_fresh_copy_cold_starts_without_compiling_anything(
    built: BuiltFunction, tmp_path: Path
) -> None:
    # As after unzipping in Lambda: new mtimes everywhere, nothing may be written.
    copy = tmp_path / "build"
    for folder in [built.code_dir, *built.layer_dirs]:
        shutil.copytree(folder, copy / folder.name, copy_function=shutil.copyfile)
    shutil.copyfile(BUILD_DIR / "template.yaml", copy / "template.yaml")
    fresh = BuiltFunction.from_build(copy)
    result = invoke_isolated(
        fresh, load_event("predict.json"), env={"MODEL_DIR": str(copy / "ModelLayer" / "model")}
    )
    assert result.response["statusCode"] == 200
    # Nothing of the function or its layers (the /var/runtime stand-in links the venv's files).
    assert [path for path in result.compiled if path.startswith(str(copy))] == []
    assert not list(copy.rglob("__pycache__/*.cpython-312.pyc.*"))  # no stray writes


@pytest.mark.parametrize(
    ("makefile", "target", "library"),
    [
        ("layers/runtime/Makefile", "build-RuntimeLayer", "numpy/_core/_multiarray_umath"),
        (
            "layers/Makefile",
            "build-OnnxRuntimeLayer",
            "onnxruntime/capi/onnxruntime_pybind11_state",
        ),
    ],
)
def test_runtime_layers_build_for_arm64_from_aarch64_wheels(
    tmp_path: Path, makefile: str, target: str, library: str
) -> None:
    proc = subprocess.run(
        [
            "make",
            "-f",
            str(ROOT / makefile),
            target,
            f"ARTIFACTS_DIR={tmp_path}",
            "ARCH=arm64",
            f"PYTHON={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder, name = library.rsplit("/", 1)
    (core,) = (tmp_path / "python" / folder).glob(f"{name}.cpython-312-*.so")
    assert "aarch64" in core.name
    e_machine = int.from_bytes(core.read_bytes()[18:20], "little")
    assert e_machine == 183  # EM_AARCH64


@pytest.mark.parametrize("kind", sorted(ZOO))
def test_invoke_model_dir_serves_a_users_own_bundle_as_the_model_itself_answers(
    kind: str, sam_build: Path, tmp_path: Path
) -> None:
    # Not the sample: another name, no version. `invoke --model-dir` pins what a deploy would.
    model = ZOO[kind]()
    bundle = tmp_path / "bundle"
    make_bundle(
        model.estimator,
        name=model.name,
        spec=model.spec,
        sample_rows=model.requests,
        out_dir=bundle,
    )
    columns = [f.name for f in manifest.read(bundle).features]
    records = {"instances": model.requests}
    columnar = {
        "dataframe_split": {
            "columns": columns,
            "data": [[row.get(c) for c in columns] for row in model.requests],
        }
    }
    answers = []
    for body in (records, columnar):
        event = load_event("predict.json") | {"body": json.dumps(body)}
        (tmp_path / "event.json").write_text(json.dumps(event), encoding="utf-8")
        result = CliRunner(mix_stderr=False).invoke(
            main,
            [
                "invoke",
                "--build-dir",
                str(sam_build),
                "--model-dir",
                str(bundle),
                "--event",
                str(tmp_path / "event.json"),
            ],
        )
        assert result.exit_code == 0, result.output
        response = json.loads(result.stdout)
        assert response["statusCode"] == 200, response["body"]
        answers.append(json.loads(response["body"]))
    assert answers[0] == answers[1]
    assert answers[0]["model"] == {"name": model.name, "version": None}
    model.predictor_task = manifest.read(bundle).task
    assert_same_answers(model, answers[0])


def test_the_built_handler_emits_its_emf_metrics(built: BuiltFunction, model_dir: Path) -> None:
    # Once lost: the worker's stdout was block-buffered and the last prints died with it.
    logs = _invoke(built, model_dir, "predict.json").logs
    emf = [json.loads(line.split("] ", 1)[1]) for line in logs.splitlines() if '"_aws"' in line]
    names = {m["Name"] for e in emf for d in e["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"Requests", "PredictRequests", "RowsPredicted", "ColdStart"} <= names


def _with_onnx_runtime(function: BuiltFunction) -> BuiltFunction:
    """The function as a version of an ONNX bundle has it: OnnxRuntimeLayer for RuntimeLayer."""
    onnx_layer = BUILD_DIR / "OnnxRuntimeLayer"
    layers = tuple(onnx_layer if d.name == "RuntimeLayer" else d for d in function.layer_dirs)
    return dataclasses.replace(function, layer_dirs=layers)


@pytest.mark.parametrize("engine", ["sklearn", "onnx"])
def test_built_batch_function_plans_scores_and_finishes_a_run(
    sam_build: Path, model_dir: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    """The three steps the state machine calls, each a cold start of the built function in a
    clean process, against moto's S3 on loopback; on either engine's runtime layer."""
    import boto3
    from moto.server import ThreadedMotoServer

    from lambdaserve.bundle.sample import FEATURE_NAMES, generate
    from lambdaserve.local.http import free_port

    batch = BuiltFunction.from_build(sam_build, "BatchFunction")
    runtime = "sklearn"
    if engine == "onnx":
        batch, runtime = _with_onnx_runtime(batch), "onnxruntime"
        model_dir = request.getfixturevalue("onnx_bundle_session")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        aws = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "MODEL_DIR": str(model_dir),
        }
        s3 = boto3.client(
            "s3",
            endpoint_url=aws["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        event = load_event("batch-plan.json")
        bucket = event["job"]["input"].split("/")[2]
        s3.create_bucket(Bucket=bucket)
        records, _ = generate(3_000, seed=2)
        lines = ["customer_id," + ",".join(FEATURE_NAMES)] + [
            f"c{i}," + ",".join("" if r[n] is None else str(r[n]) for n in FEATURE_NAMES)
            for i, r in enumerate(records)
        ]
        s3.put_object(Bucket=bucket, Key="batch/input/day.csv", Body="\n".join(lines).encode())
        event["job"]["part_mb"] = 0.05
        planned = invoke_isolated(batch, event, env=aws)
        assert planned.response["parts"], planned.logs
        job = planned.response["job"]
        for part in planned.response["parts"]:
            scored = invoke_isolated(batch, {"action": "score", "job": job, "part": part}, env=aws)
            assert scored.response["rows_in"] == scored.response["rows_scored"], scored.logs
        finished = invoke_isolated(batch, {"action": "finish", "job": job}, env=aws)
        assert finished.response["status"] == "complete"
        assert finished.response["rows_scored"] == 3_000
        for name in ("app", "lambdaserve.batch.part", runtime, "aws_lambda_powertools"):
            assert str(scored.modules[name]).startswith(str(BUILD_DIR)), name
        assert "pandas" not in scored.modules
    finally:
        server.stop()


def test_the_onnx_engine_serves_from_its_own_runtime_layer_without_scikit_learn(
    built: BuiltFunction, onnx_bundle_session: Path
) -> None:
    """A version of an ONNX bundle has OnnxRuntimeLayer where the others have RuntimeLayer:
    the built handler answers its golden examples with neither scikit-learn nor scipy on the
    path; the layer meets its 80 MB target and the whole deployment fits in 35% of Lambda's
    limit."""
    onnx_layer = BUILD_DIR / "OnnxRuntimeLayer"
    function = _with_onnx_runtime(built)
    bundle = manifest.read(onnx_bundle_session)
    event = load_event("predict.json")
    event["body"] = json.dumps({"instances": [g.inputs for g in bundle.golden_examples]})
    result = invoke_isolated(function, event, env={"MODEL_DIR": str(onnx_bundle_session)})
    assert result.response["statusCode"] == 200, result.response["body"] + result.logs
    body = json.loads(result.response["body"])
    assert body["predictions"] == [g.prediction for g in bundle.golden_examples]
    assert body["probabilities"] == [g.probabilities for g in bundle.golden_examples]
    assert str(result.modules["onnxruntime"]).startswith(str(onnx_layer))
    assert not {"sklearn", "scipy", "joblib"} & set(result.modules)
    sizes = sum(_folder_bytes(d) for d in [function.code_dir, *function.layer_dirs])
    assert sizes <= 0.35 * 262_144_000, sizes
    assert _folder_bytes(onnx_layer) <= 80_000_000


def test_the_built_handler_scores_a_mirrored_request_as_a_shadow(
    built: BuiltFunction, model_dir: Path
) -> None:
    """events/shadow-mirror.json: what the shadow subscription hands the shadow version (one
    mirror record of events/predict.json's rows, meant for $LATEST)."""
    result = _invoke(built, model_dir, "shadow-mirror.json")
    assert result.response == {"records": 1, "rows": 2, "skipped": 0}, result.logs
    (line,) = [line for line in result.logs.splitlines() if '"lambdaserve_shadow":1' in line]
    record = json.loads(line.split("] ", 1)[1])
    assert record["shadow"]["predictions"] == record["live"]["predictions"]  # the same model
    assert '"_aws"' not in result.logs  # a shadow counts in no business metric


def test_invoke_builds_the_api_gateway_event_from_a_request_body(sam_build: Path) -> None:
    """Issue 26 #19: `invoke --body FILE` instead of an event built by hand."""
    body = ROOT / "examples" / "predict-body.json"
    result = CliRunner(mix_stderr=False).invoke(
        main, ["invoke", "--build-dir", str(sam_build), "--body", str(body)]
    )
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200, response["body"]
    sent = json.loads(body.read_text())["instances"]
    assert len(json.loads(response["body"])["predictions"]) == len(sent)
    neither = CliRunner(mix_stderr=False).invoke(main, ["invoke", "--build-dir", str(sam_build)])
    assert neither.exit_code == 2
    assert "--event FILE" in neither.stderr


def test_invoke_attaches_the_runtime_layer_of_the_bundles_engine(
    sam_build: Path, onnx_bundle: Path, tmp_path: Path
) -> None:
    """Issue 29's mend: an ONNX bundle answered 503 ("attach the ONNX runtime layer") because
    invoke always mounted the scikit-learn runtime layer; deploy attaches the engine's own."""
    golden = manifest.read(onnx_bundle).golden_examples[:2]
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"instances": [g.inputs for g in golden]}))
    args = ["invoke", "--build-dir", str(sam_build), "--model-dir", str(onnx_bundle)]
    result = CliRunner(mix_stderr=False).invoke(main, [*args, "--body", str(body)])
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200, response["body"]
    answer = json.loads(response["body"])
    assert answer["predictions"] == [g.prediction for g in golden]


@pytest.mark.parametrize("engine", ["sklearn", "onnx"])
def test_the_built_handler_answers_binary_tensors_as_it_answers_predict(
    built: BuiltFunction, model_dir: Path, onnx_bundle_session: Path, engine: str
) -> None:
    """The Open Inference Protocol's binary form (tritonclient's encoding, base64 as API
    Gateway hands it over) through the built layers of each engine: the same bits as /predict."""
    import base64

    import numpy as np
    from tritonclient.http import InferenceServerClient, InferInput, InferResult

    function, folder = (
        (built, model_dir)
        if engine == "sklearn"
        else (
            _with_onnx_runtime(built),
            onnx_bundle_session,
        )
    )
    bundle = manifest.read(folder)
    rows = [g.inputs for g in bundle.golden_examples]
    predict = load_event("predict.json")
    predict["body"] = json.dumps({"instances": rows})
    expected = invoke_isolated(function, predict, env={"MODEL_DIR": str(folder)}).response
    inputs = []
    for feature in bundle.features:
        values = [r.get(feature.name) for r in rows]
        if feature.type == "category":
            tensor, array = InferInput(feature.name, [len(rows)], "BYTES"), np.array(values, object)
        else:
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            tensor = InferInput(feature.name, [len(rows)], "FP64")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    body, json_size = InferenceServerClient.generate_request_body(inputs)
    event = load_event("predict.json")
    event["path"] = event["resource"] = f"/v2/models/{bundle.name}/infer"
    headers = {
        "Content-Type": "application/octet-stream",
        "Accept": "application/octet-stream",
        "Inference-Header-Content-Length": str(json_size),
    }
    event["headers"], event["multiValueHeaders"] = headers, {k: [v] for k, v in headers.items()}
    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    result = invoke_isolated(function, event, env={"MODEL_DIR": str(folder)})
    response = result.response
    assert response["statusCode"] == 200, response["body"] + result.logs
    answer = InferResult.from_response_body(
        base64.b64decode(response["body"]),
        False,
        int(response["multiValueHeaders"]["Inference-Header-Content-Length"][0]),
    )
    want = json.loads(expected["body"])
    assert answer.as_numpy("predictions").tolist() == want["predictions"]
    assert answer.as_numpy("probabilities").tobytes() == np.array(want["probabilities"]).tobytes()


def test_the_recorded_deployment_sizes_are_the_builds_rounded_up(built: BuiltFunction) -> None:
    """bundle and publish check a model against shared/budget.DEPLOYMENT_BYTES: each must be
    at least the build's real function + runtime layer + serving layer, and within 2% of it
    (a change to the layers updates the figure)."""
    from lambdaserve.shared import budget

    runtime = {"sklearn": "RuntimeLayer", "onnx": "OnnxRuntimeLayer"}
    for engine, layer in runtime.items():
        real = sum(
            budget.folder_bytes(BUILD_DIR / part)
            for part in ("PredictFunction", layer, "ServingLayer")
        )
        recorded = budget.DEPLOYMENT_BYTES[engine]
        assert real <= recorded <= real * 1.02, (engine, real, recorded)


@pytest.mark.parametrize("engine", ["sklearn", "onnx"])
def test_the_recorded_runtime_memory_holds_the_built_handler(
    built: BuiltFunction, model_dir: Path, onnx_bundle_session: Path, engine: str
) -> None:
    """shared/budget.RUNTIME_MB, which `bundle`'s MemorySize adds the model to, is at least
    what the built handler takes serving the (tiny) sample model: its Max Memory Used."""
    from lambdaserve.shared import budget

    function, folder = (
        (built, model_dir)
        if engine == "sklearn"
        else (_with_onnx_runtime(built), onnx_bundle_session)
    )
    result = invoke_isolated(function, load_event("predict.json"), env={"MODEL_DIR": str(folder)})
    assert result.response["statusCode"] == 200, result.logs
    assert 0.5 * budget.RUNTIME_MB[engine] < result.max_memory_mb <= budget.RUNTIME_MB[engine]
