"""A moto account holding what `sam deploy` creates, built from template.yaml's own properties."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from support import ROOT, InProcessInvoker

from lambdaserve import manifest
from lambdaserve.deploy import Deployer
from lambdaserve.local.build import load_template
from lambdaserve.local.stack import zip_files
from lambdaserve.records import AliasState
from lambdaserve.registry import Registry, layer_zip
from lambdaserve.signing import ManifestSigner
from lambdaserve.trust import KEY_ENV

BUCKET = "lambdaserve-registry-test"
FUNCTION = "lambdaserve-PredictFunction"


# A first `sam deploy`: no GitOps model, the SSM parameters say "sample".
FIRST_DEPLOY = {"GitOpsModel": False, "ServeSampleModel": True}


def _ref_default(value: Any, parameters: dict[str, Any]) -> Any:
    """A property as CloudFormation resolves it on a first deploy (Ref defaults, Fn::If)."""
    if isinstance(value, dict) and "Ref" in value:
        return parameters[value["Ref"]]["Default"]
    if isinstance(value, dict) and "Fn::If" in value:
        condition, yes, no = value["Fn::If"]
        return _ref_default(yes if FIRST_DEPLOY[condition] else no, parameters)
    return value


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
        return Deployer(**settings)


@pytest.fixture
def account(sample_bundle: Path, tmp_path: Path) -> Iterator[Account]:
    with mock_aws():
        s3, lam, kms = boto3.client("s3"), boto3.client("lambda"), boto3.client("kms")
        s3.create_bucket(Bucket=BUCKET)
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        role = boto3.client("iam").create_role(RoleName="predict", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]
        template = load_template(ROOT / "template.yaml")
        params = template["Parameters"]
        glob = template["Globals"]["Function"]
        props = template["Resources"]["PredictFunction"]["Properties"]
        env = {
            k: str(_ref_default(v, params))
            for k, v in {
                **glob["Environment"]["Variables"],
                **props["Environment"]["Variables"],
            }.items()
            if k != KEY_ENV  # !GetAtt ModelSigningKey.Arn: the key made above
        }
        env[KEY_ENV] = key
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
        lam.create_function(
            FunctionName=FUNCTION,
            Role=role,
            Runtime=glob["Runtime"],
            Handler=props["Handler"],
            MemorySize=int(_ref_default(glob["MemorySize"], params)),
            Timeout=int(_ref_default(glob["Timeout"], params)),
            Code={
                "ZipFile": zip_files({"app.py": (ROOT / "functions/predict/app.py").read_text()})
            },
            Layers=layers,
            Environment={"Variables": env},
            Publish=True,
        )
        lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
        registry = Registry(BUCKET, s3, lam, signer=ManifestSigner(kms, key))

        def layer_zips(arn: str) -> bytes:
            if arn in zips:
                return zips[arn]
            found = registry.version_of_layer(arn)
            assert found, f"unknown layer {arn}"
            return registry.layer_zip_bytes(found.name, found.version)

        yield Account(
            s3=s3,
            lam=lam,
            ssm=boto3.client("ssm"),
            kms=kms,
            signing_key=key,
            registry=registry,
            invoker=InProcessInvoker(lam, layer_zips, tmp_path / "opt"),
        )
