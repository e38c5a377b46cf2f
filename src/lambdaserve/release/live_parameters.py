"""The SSM parameters that record what serves, so a `sam deploy` keeps the live model.

`lambdaserve deploy`, `promote` and `rollback` change the function outside CloudFormation;
they write the live model here, and template.yaml reads these parameters back. Each stack has
its own path (`/lambdaserve/<stack>` by default), so two stacks in one account and region
never overwrite each other's record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdaserve.release.function_versions import engine_of, function_env

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

MODEL_ENV = ("MODEL_NAME", "MODEL_VERSION", "MODEL_SHA256")
# Parameter file name under the prefix -> the template parameter that reads it.
KEYS = {
    "layer": "model-layer-arn",
    "MODEL_NAME": "model-name",
    "MODEL_VERSION": "model-version",
    "MODEL_SHA256": "model-sha256",
    "engine": "model-engine",
}
TEMPLATE_PARAMETER = {
    "model-layer-arn": "LiveModelLayerArn",
    "model-name": "LiveModelName",
    "model-version": "LiveModelVersion",
    "model-sha256": "LiveModelSha256",
    "model-engine": "LiveModelEngine",
}
SAMPLE = "sample"  # "the template's own sample model layer"


def stack_prefix(stack: str) -> str:
    """The default SSM path of one stack's live model."""
    return f"/lambdaserve/{stack}"


def names(prefix: str) -> dict[str, str]:
    """Each parameter file -> its full SSM name under `prefix`."""
    return {key: f"{prefix.rstrip('/')}/{key}" for key in KEYS.values()}


def template_overrides(prefix: str) -> dict[str, str]:
    """The `sam deploy --parameter-overrides` that point a stack at `prefix`."""
    return {
        "ModelParameterPrefix": prefix.rstrip("/"),
        **{TEMPLATE_PARAMETER[key]: name for key, name in names(prefix).items()},
    }


def init_parameters(ssm: SSMClient, prefix: str) -> list[str]:
    """Create the parameters as "sample" where they are missing (before a first deploy)."""
    created = []
    for name in names(prefix).values():
        try:
            ssm.put_parameter(Name=name, Value=SAMPLE, Type="String", Overwrite=False)
        except ssm.exceptions.ParameterAlreadyExists:
            continue
        created.append(name)
    return created


def write_live(ssm: SSMClient, prefix: str, config: dict[str, Any]) -> None:
    """Record the model a function version serves (its configuration, as Lambda reports it).

    A version serving the template's own sample (no MODEL_VERSION) is recorded as "sample",
    which the template turns back into its ModelLayer."""
    env = function_env(config)
    if env.get("MODEL_VERSION"):
        values = {KEYS["layer"]: config["Layers"][-1]["Arn"], KEYS["engine"]: engine_of(config)}
        values |= {KEYS[k]: env[k] for k in MODEL_ENV}
    else:
        values = dict.fromkeys(KEYS.values(), SAMPLE)
    full = names(prefix)
    for key, value in values.items():
        ssm.put_parameter(Name=full[key], Value=value, Type="String", Overwrite=True)
