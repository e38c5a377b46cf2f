"""Paths and event files the tests share (imported, unlike conftest, which pytest owns)."""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import io
import json
import logging
import os
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from aws_lambda_powertools.logging import logger as pt_logger
from aws_lambda_powertools.metrics.provider import cold_start as pt_cold_start

from lambdaserve import manifest
from lambdaserve.alias import AliasState
from lambdaserve.local.layers import LayerFolders, zip_files
from lambdaserve.local.template import TemplateResolver, load_template
from lambdaserve.local.worker import VersionConfig
from lambdaserve.registry.store import Registry, layer_zip
from lambdaserve.registry.trust import KEY_ENV
from lambdaserve.release.deployer import Deployer, create_deployer
from lambdaserve.release.function_versions import FOLLOWER_ENV, RUNTIME_LAYER_ENV
from lambdaserve.shared.signing import ManifestSigner

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """An API Gateway event from events/, as `sam local invoke -e` would send it."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore the old ones."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def import_fresh(path: Path, name: str) -> ModuleType:
    """Import a handler file as a new Lambda container would: a new module, fresh Powertools
    state (its logger, cold-start flags), so each import is a cold start."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
    logging.Logger.manager.loggerDict.pop(service, None)
    pt_logger.is_cold_start = True
    pt_cold_start.reset_cold_start_flag()  # type: ignore[no-untyped-call]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    """The attributes of Lambda's context object that Powertools and the handler read."""

    function_name: str = "lambdaserve-PredictFunction"
    function_version: str = "7"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:lambdaserve-PredictFunction:live"
    )
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/lambdaserve-PredictFunction"
    log_stream_name: str = "2026/11/26/[7]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@dataclass
class InProcessInvoker:
    """Lambda Invoke without Docker, for tests that run moto in this process: the version's
    configuration comes from the local stack's own `LayerFolders.version_config` (environment,
    layers unpacked as Lambda lays them out), and the real predict handler runs in this process
    instead of in a worker, so hundreds of deploys per test run cost no process starts."""

    lambda_client: Any
    layers: LayerFolders
    calls: list[tuple[str, str]] = field(default_factory=list)
    _containers: dict[tuple[str, str], tuple[ModuleType, VersionConfig]] = field(
        default_factory=dict
    )

    def _container(self, function: str, qualifier: str) -> tuple[ModuleType, VersionConfig]:
        key = (function, qualifier)
        if key not in self._containers:
            config = self.lambda_client.get_function_configuration(
                FunctionName=function, Qualifier=qualifier
            )
            version = self.layers.version_config(
                function, qualifier, dict(config), ROOT / "functions/predict"
            )
            env = {
                **version.environment,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "AWS_LAMBDA_FUNCTION_VERSION": qualifier,  # as Lambda sets it
            }
            version = replace(version, environment=env)
            with environment(env):
                module = import_fresh(ROOT / "functions/predict/app.py", f"predict_{qualifier}")
            self._containers[key] = (module, version)
        return self._containers[key]

    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> Any:
        self.calls.append((function, qualifier))
        module, version = self._container(function, qualifier)
        context = FakeLambdaContext(
            function_name=function,
            function_version=qualifier,
            memory_limit_in_mb=version.memory_mb,
            invoked_function_arn=version.arn,
        )
        with environment(version.environment):
            return module.lambda_handler(event, context)


def packaged_template() -> dict[str, Any]:
    """template.yaml as `sam package` hands it to CloudFormation."""
    from lambdaserve.local.template import packaged_template as packaged

    return packaged(ROOT / "template.yaml")


BUCKET = "lambdaserve-registry-test"
FUNCTION = "lambdaserve-PredictFunction"
BATCH_FUNCTION = "lambdaserve-BatchFunction"


@dataclass
class Account:
    """The moto account as the stack leaves it: function v1 serving the sample, alias live."""

    s3: Any
    lam: Any
    ssm: Any
    kms: Any
    signing_key: str
    registry: Registry  # signs with the stack's key, as `lambdaserve publish` does
    invoker: InProcessInvoker
    function: str = FUNCTION
    bucket: str = BUCKET

    def live(self) -> AliasState:
        """Where `live` points now, read as every caller reads it."""
        return AliasState.from_alias(self.lam.get_alias(FunctionName=self.function, Name="live"))

    def deployer(self, **overrides: Any) -> Deployer:
        """A deployer of this account's function, verifying with KMS as the CLI does."""
        settings: dict[str, Any] = {
            "registry": self.registry,
            "lambda_client": self.lam,
            "invoker": self.invoker,
            "function": self.function,
            "kms": self.kms,
            **overrides,
        }
        return create_deployer(**settings)


@functools.cache
def _service_models() -> Any:
    import botocore.loaders

    return botocore.loaders.create_loader()


@functools.cache
def _parsed_template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def project_template() -> dict[str, Any]:
    """template.yaml, parsed once per test session (a fresh copy each call)."""
    return copy.deepcopy(_parsed_template())


def moto_account(sample_bundle: Path, workdir: Path) -> Account:
    """What a first `sam deploy` leaves in the current moto account, from template.yaml's own
    properties as CloudFormation resolves them (TemplateResolver)."""
    # moto starts each test with a new default session; give it the session-wide loader, so
    # botocore's service models are parsed once per test run, not once per test.
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION._session.register_component("data_loader", _service_models())  # type: ignore[union-attr]
    s3, lam, kms = boto3.client("s3"), boto3.client("lambda"), boto3.client("kms")
    s3.create_bucket(Bucket=BUCKET)
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    role = boto3.client("iam").create_role(RoleName="predict", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    template = project_template()
    resolver = TemplateResolver(template)  # a first deploy: the SSM parameters say sample
    glob = template["Globals"]["Function"]
    props = template["Resources"]["PredictFunction"]["Properties"]
    env = {
        k: str(resolver.value(v))
        for k, v in {
            **glob["Environment"]["Variables"],
            **props["Environment"]["Variables"],
        }.items()
        # Resources: the key made above, the batch function, the runtime layers below.
        if k not in (KEY_ENV, FOLLOWER_ENV, *RUNTIME_LAYER_ENV.values())
    }
    env[KEY_ENV] = key
    env[FOLLOWER_ENV] = BATCH_FUNCTION
    sample_zip = layer_zip(sample_bundle, manifest.read(sample_bundle))
    zips = {}
    layers = []
    for name, content in (
        ("RuntimeLayer", zip_files({"python/README": "runtime"})),
        ("ServingLayer", zip_files({"python/README": "serving"})),
        ("ModelLayer", sample_zip),
    ):
        arn = lam.publish_layer_version(LayerName=name, Content={"ZipFile": content})[
            "LayerVersionArn"
        ]
        zips[arn] = content
        layers.append(arn)
    onnx_runtime = lam.publish_layer_version(
        LayerName="OnnxRuntimeLayer", Content={"ZipFile": zip_files({"python/README": "onnx"})}
    )["LayerVersionArn"]
    env |= {"SKLEARN_RUNTIME_LAYER": layers[0], "ONNX_RUNTIME_LAYER": onnx_runtime}
    for name, logical_id, code, variables in (
        (FUNCTION, "PredictFunction", "predict", env),
        (
            BATCH_FUNCTION,
            "BatchFunction",
            "batch",
            {k: v for k, v in env.items() if k != FOLLOWER_ENV},
        ),
    ):
        props = {**glob, **template["Resources"][logical_id]["Properties"]}
        lam.create_function(
            FunctionName=name,
            Role=role,
            Runtime=glob["Runtime"],
            Handler=props["Handler"],
            MemorySize=int(resolver.string(props["MemorySize"])),
            Timeout=int(resolver.string(props["Timeout"])),
            Code={
                "ZipFile": zip_files({"app.py": (ROOT / f"functions/{code}/app.py").read_text()})
            },
            Layers=layers,
            Environment={"Variables": variables},
            Publish=True,
        )
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    registry = Registry(BUCKET, s3, lam, signer=ManifestSigner(kms, key))

    known = {}  # the runtime and serving layers are this venv and src/, already importable
    for arn, content in zips.items():
        folder = workdir / "layers" / arn.rsplit(":", 2)[-2]
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            archive.extractall(folder)
        known[arn] = folder

    return Account(
        s3=s3,
        lam=lam,
        ssm=boto3.client("ssm"),
        kms=kms,
        signing_key=key,
        registry=registry,
        invoker=InProcessInvoker(lam, LayerFolders(workdir / "opt", lambda: registry, known)),
    )
