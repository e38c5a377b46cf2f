"""What `sam delete` keeps on purpose, and removing it when a stack is gone for good.

The registry bucket and the signing key are retained by the template (`DeletionPolicy:
Retain`): deleting a stack must never destroy the only copy of a model or the key that vouches
for it. Model layers are published by the CLI, outside the stack, and the live-model SSM
parameters are written by it. `purge` removes exactly these, for one stack, and nothing that
another stack in the account could be using.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lambdaserve.registry.trust import key_id
from lambdaserve.release.live_parameters import names

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef
    from mypy_boto3_ssm import SSMClient

KEY_DELETION_DAYS = 7  # KMS's shortest waiting period: the key can still be restored meanwhile


@dataclass
class Purged:
    """What was removed."""

    objects: int = 0
    bucket: str = ""
    layer_versions: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    key_deletion: str = ""


def purge(
    *,
    s3: S3Client,
    lambda_client: LambdaClient,
    ssm: SSMClient,
    kms: KMSClient,
    bucket: str,
    signing_key: str,
    parameter_prefix: str,
) -> Purged:
    """Delete the registry (every object version), the model layer versions it published,
    the live-model parameters, and schedule the signing key's deletion."""
    done = Purged(bucket=bucket)
    done.layer_versions = _registry_layers(s3, bucket)
    for arn in done.layer_versions:
        _, _, _, _, _, _, layer, number = arn.split(":")
        lambda_client.delete_layer_version(LayerName=layer, VersionNumber=int(number))
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    for page in pages:
        doomed: list[ObjectIdentifierTypeDef] = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
            done.objects += len(doomed)
    s3.delete_bucket(Bucket=bucket)
    wanted = list(names(parameter_prefix).values())
    found = ssm.get_parameters(Names=wanted)["Parameters"]
    done.parameters = [p["Name"] for p in found]
    if done.parameters:
        ssm.delete_parameters(Names=done.parameters)
    reply = kms.schedule_key_deletion(
        KeyId=key_id(signing_key), PendingWindowInDays=KEY_DELETION_DAYS
    )
    done.key_deletion = str(reply.get("DeletionDate", ""))
    return done


def _registry_layers(s3: S3Client, bucket: str) -> list[str]:
    """Every layer version this registry published (from each version's layer.json)."""
    arns = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="models/"):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/layer.json"):
                record = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                if record.get("layer_arn"):
                    arns.append(str(record["layer_arn"]))
    return sorted(set(arns))
