"""Lambda's unzipped limit (262,144,000 bytes for the code and all layers of a version) is
checked before AWS sees a model: `bundle` and `publish` against the deployment each engine
ships, `deploy` against the very layers the new version will hold, and the local stack's
Lambda answers an over-limit configuration as Lambda does (moto does not check it).

Lambda's refusal, quoted by the emulation: InvalidParameterValueException (400), "Function code
combined with layers exceeds the maximum allowed size of 262144000 bytes. The actual size is N
bytes." (seen in aws/serverless-application-model#2124, brefphp/bref#450, and others; the
limit: docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import joblib
import numpy as np
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner, Result
from support import Account

from lambdaserve.cli.main import main
from lambdaserve.local.endpoint import AwsEndpoint
from lambdaserve.local.http import free_port
from lambdaserve.registry.store import RegistryError
from lambdaserve.release.errors import InvalidReleaseError
from lambdaserve.release.sizes import DeploymentSizes
from lambdaserve.shared import budget


def _bundle_with_weights(tmp_path: Path, filler_bytes: int, *args: str) -> tuple[Path, Result]:
    """`lambdaserve bundle` of the sample model with `filler_bytes` of incompressible weights
    added, as a forest of a few hundred deep trees carries them: its folder and the result."""
    model, spec, csv_path = _user_model(tmp_path, filler_bytes)
    out = tmp_path / "bundle"
    result = CliRunner().invoke(
        main,
        ["bundle", str(model), "--features", str(spec), "--sample", str(csv_path),
         "--out", str(out), *args],
    )  # fmt: skip
    return out, result


def _user_model(tmp_path: Path, filler_bytes: int) -> tuple[Path, Path, Path]:
    """The sample model with weights added: its joblib file, spec and sample CSV."""
    from lambdaserve.bundle import sample

    bundle = tmp_path / "small"
    sample.train(bundle, rows=2000)
    model = joblib.load(bundle / "model.joblib")
    model.filler_ = np.frombuffer(os.urandom(filler_bytes), dtype=np.uint8)
    joblib.dump(model, tmp_path / "model.joblib")
    features = json.loads((bundle / "manifest.json").read_text())["features"]
    (tmp_path / "features.json").write_text(json.dumps({"features": features}))
    csv_path = tmp_path / "customers.csv"
    result = CliRunner().invoke(main, ["sample", "data", "--out", str(csv_path), "--rows", "200"])
    assert result.exit_code == 0, result.output
    return tmp_path / "model.joblib", tmp_path / "features.json", csv_path


def test_bundle_refuses_a_model_too_large_for_its_engine_in_one_line(tmp_path: Path) -> None:
    # 100 MB of weights: over the ~96 MB the scikit-learn engine's deployment leaves.
    out, result = _bundle_with_weights(tmp_path, 100_000_000, "--name", "big")
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert "\n" not in line
    assert re.match(r"Error: too large for Lambda: the model layer 100\.\d MB \+ ", line), line
    assert "262,144,000 bytes" in line
    assert "--engine onnx" in line
    assert not any(out.iterdir())  # nothing half-written is left to publish


def test_publish_refuses_before_claiming_a_number_or_uploading(
    account: Account, sample_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the scikit-learn engine's deployment left only 1 kB for a model.
    monkeypatch.setitem(budget.DEPLOYMENT_BYTES, "sklearn", budget.LIMIT - 1000)
    with pytest.raises(RegistryError, match="too large for Lambda"):
        account.registry.publish(sample_bundle, "test")
    listed = account.s3.list_objects_v2(Bucket=account.bucket, Prefix="models/")
    assert listed.get("KeyCount", 0) == 0


def test_publish_records_what_the_layer_unzips_to(account: Account, sample_bundle: Path) -> None:
    published = account.registry.publish(sample_bundle, "test")
    size = account.registry.layer_unzipped_bytes(published.layer_arn)
    assert size == budget.unzipped_bytes(
        account.registry.layer_zip_bytes(published.name, published.version)
    )


def _sizes(account: Account, tmp_path: Path, each: int) -> DeploymentSizes:
    """Sizes as on AWS, every zip read as `each` bytes (the ranged reads: tests/unit)."""
    return DeploymentSizes(
        account.lam,
        account.registry,
        cache_file=tmp_path / "sizes.json",
        read_zip=lambda _url: each,
        aws=True,
    )


def test_deploy_refuses_a_version_over_the_limit_before_asking_lambda(
    published: Account, tmp_path: Path
) -> None:
    before = published.live()
    latest = published.lam.get_function_configuration(FunctionName=published.function)
    versions = published.lam.list_versions_by_function(FunctionName=published.function)
    deployer = published.deployer()
    deployer.publisher.sizes = _sizes(published, tmp_path, 100_000_000)  # 2 stack layers + code
    with pytest.raises(InvalidReleaseError, match="over Lambda's limit of 262,144,000 bytes"):
        deployer.deploy("retail-propensity", "1")
    assert published.live() == before
    after = published.lam.get_function_configuration(FunctionName=published.function)
    assert after["Layers"] == latest["Layers"]
    assert after["Environment"] == latest["Environment"]  # Lambda was never asked
    now = published.lam.list_versions_by_function(FunctionName=published.function)
    assert len(now["Versions"]) == len(versions["Versions"])  # nothing published


def test_deploy_goes_ahead_where_the_version_fits(published: Account, tmp_path: Path) -> None:
    deployer = published.deployer()
    deployer.publisher.sizes = _sizes(published, tmp_path, 1_000_000)
    deployer.deploy("retail-propensity", "1")
    assert published.live().version != "1"


@pytest.fixture
def endpoint() -> Iterator[AwsEndpoint]:
    refusal = budget.LAMBDA_MESSAGE.format(limit=budget.LIMIT, size=300_000_000)
    aws = AwsEndpoint(
        free_port(),
        lambda *_: (b"{}", None, "1"),
        oversize=lambda _name, layers: refusal if "big" in "".join(layers) else None,
    )
    aws.start()
    yield aws
    aws.stop()


def test_the_local_lambda_refuses_an_over_limit_configuration_as_lambda_does(
    endpoint: AwsEndpoint,
) -> None:
    lam = boto3.client(
        "lambda",
        endpoint_url=endpoint.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with pytest.raises(ClientError) as refused:
        lam.update_function_configuration(
            FunctionName="predict", Layers=["arn:aws:lambda:us-east-1:123456789012:layer:big:1"]
        )
    error = refused.value.response["Error"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 "
        "bytes. The actual size is 300000000 bytes."
    )


def test_the_local_stack_sizes_a_version_from_its_folders(tmp_path: Path) -> None:
    """LocalFunctions.oversize: the code folder and each layer's folder, as their zips unpack."""
    from lambdaserve.local.functions import LocalFunctions
    from lambdaserve.local.layers import LayerFolders

    code, runtime, model = tmp_path / "code", tmp_path / "runtime", tmp_path / "model"
    for folder, size in ((code, 10_000), (runtime, 165_000_000), (model, 90_000_000)):
        folder.mkdir()
        with open(folder / "blob", "wb") as fh:
            fh.truncate(size)  # sparse: its apparent size, no disk
    layers = LayerFolders(tmp_path / "unpacked", lambda: None)  # type: ignore[arg-type,return-value]
    layers.known |= {"arn:runtime:1": runtime, "arn:model:1": model}
    functions = LocalFunctions({"predict": code}, lambda: None, layers, dict, tmp_path / "state")
    assert functions.oversize("predict", ["arn:runtime:1", "arn:model:1"]) is None
    with open(model / "more", "wb") as fh:
        fh.truncate(10_000_000)
    functions = LocalFunctions({"predict": code}, lambda: None, layers, dict, tmp_path / "state")
    refusal = functions.oversize(
        "arn:aws:lambda:us-east-1:123456789012:function:predict", ["arn:runtime:1", "arn:model:1"]
    )
    assert refusal == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 "
        "bytes. The actual size is 265010000 bytes."
    )


def test_bundle_measures_the_loaded_model_and_the_memory_size_it_needs(tmp_path: Path) -> None:
    out, result = _bundle_with_weights(tmp_path, 60_000_000, "--name", "mid", "--json")
    assert result.exit_code == 0, result.output
    memory = json.loads(result.output)["memory"]
    # Its 60 MB of weights, resident: the peak over the runtime's own, in a fresh interpreter.
    assert 60_000_000 <= memory["model_bytes"] <= 120_000_000
    assert memory["memory_size_mb"] == budget.memory_size_mb(memory["model_bytes"], "sklearn")
    assert memory["memory_size_mb"] >= (128 + 60) * 1.25
    assert json.loads((out / "manifest.json").read_text())["memory"] == memory


def test_deploy_refuses_a_model_the_functions_memory_cannot_hold(
    account: Account, sample_bundle: Path
) -> None:
    from dataclasses import replace

    from lambdaserve import manifest

    bundled = manifest.read(sample_bundle)
    heavy = {"model_bytes": 3 * 2**30, "memory_size_mb": 4096}
    manifest.write(replace(bundled, memory=heavy), sample_bundle)
    published = account.registry.publish(sample_bundle, "test")
    before = account.live()
    memory = account.lam.get_function_configuration(FunctionName=account.function)["MemorySize"]
    assert memory < 4096
    with pytest.raises(InvalidReleaseError, match=f"needs MemorySize 4096 MB; .* has {memory} MB"):
        account.deployer().deploy(published.name, published.version)
    assert account.live() == before
