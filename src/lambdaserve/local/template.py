"""template.yaml as data: read with CloudFormation's short tags, as `sam package` hands it over,
through the SAM transform, and resolved for one deploy (parameters, conditions, Fn::If) the
way CloudFormation would. Used by the local stack, the tests and the lint's checkov step."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation short tags (!Ref, !Sub, ...) as their long form."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path) -> dict[str, Any]:
    """A SAM/CloudFormation template as plain data."""
    loader = _CfnLoader(Path(path).read_text(encoding="utf-8"))  # a SafeLoader
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a template")
    return data


class _NoManagedPolicies:
    """samtranslator's policy loader without IAM: the template names no managed policy by name."""

    def load(self) -> dict[str, str]:
        return {}


def packaged_template(path: Path) -> dict[str, Any]:
    """A template as `sam package` hands it to CloudFormation: folders become S3 URIs."""
    return package(load_template(path))


def package(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of a parsed template with its folders as S3 URIs, as `sam package` makes them."""
    import copy

    template = copy.deepcopy(template)
    for logical_id, resource in template["Resources"].items():
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in resource.get("Properties", {}):
                suffix = "json" if key == "DefinitionUri" else "zip"
                resource["Properties"][key] = f"s3://artifacts/{logical_id}.{suffix}"
    return template


def sam_transform(
    template: dict[str, Any], parameters: dict[str, Any] | None = None, region: str | None = None
) -> dict[str, Any]:
    """The CloudFormation the AWS::Serverless transform makes of a template (dev tooling:
    samtranslator comes with the SAM CLI, not with the package). `region`: the stack's (else
    the environment's, as boto3 finds it)."""
    import copy

    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    fragment, values = copy.deepcopy(template), dict(parameters or {})
    # As samtranslator's own transform(), with the session (and so the region) given.
    to_py27_compatible_template(fragment, values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    result: dict[str, Any] = translator.translate(
        fragment,
        parameter_values=values,
        passthrough_metadata=True,  # keeps each resource's checkov skips and their reasons
        get_managed_policy_map=_NoManagedPolicies().load,
    )
    return dict(undo_mark_unicode_str_in_template(result))


class TemplateValueError(ValueError):
    """A template value the local runner cannot resolve without AWS."""


NO_VALUE = object()


class TemplateResolver:
    """Evaluates a template's parameters, conditions and the intrinsics a function's settings
    use (Ref, Fn::If, Fn::Equals/Not/And/Or), as CloudFormation would for one deploy.

    SSM-typed parameters take `ssm` values, else "sample": a first deploy, the sample model."""

    def __init__(
        self,
        template: dict[str, Any],
        overrides: dict[str, str] | None = None,
        ssm: dict[str, str] | None = None,
    ) -> None:
        self.template = template
        self.values: dict[str, str] = {}
        for name, spec in template.get("Parameters", {}).items():
            default = str(spec.get("Default", ""))
            if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
                default = (ssm or {}).get(default, "sample")
            self.values[name] = (overrides or {}).get(name, default)
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self._evaluate(self.template["Conditions"][name]))
        return self._conditions[name]

    def _evaluate(self, node: Any) -> Any:
        if not isinstance(node, dict) or len(node) != 1:
            return node
        ((key, arg),) = node.items()
        match key:
            case "Ref" if arg == "AWS::NoValue":
                return NO_VALUE
            case "Ref" if arg in self.values:
                return self.values[arg]
            case "Ref":
                return node  # a resource: the caller decides what it means locally
            case "Condition":
                return self.condition(arg)
            case "Fn::If":
                name, yes, no = arg
                return self._evaluate(yes if self.condition(name) else no)
            case "Fn::Equals":
                left, right = (self._evaluate(a) for a in arg)
                return str(left) == str(right)
            case "Fn::Not":
                return not self._evaluate(arg[0])
            case "Fn::And":
                return all(self._evaluate(a) for a in arg)
            case "Fn::Or":
                return any(self._evaluate(a) for a in arg)
            case "Fn::Sub" if isinstance(arg, str):
                out = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: self.values.get(m[1], m[0]), arg)
                return node if "${" in out else out  # parameters only; else the caller decides
            case "Fn::GetAtt" | "Fn::Sub" | "Fn::Join" | "Fn::ImportValue":
                return node  # resource attributes exist only in AWS: the caller decides
        raise TemplateValueError(f"cannot resolve {key} locally")

    def value(self, node: Any) -> Any:
        """A resolved property: a string, NO_VALUE, or {"Ref": resource} left for the caller."""
        out = self._evaluate(node)
        return str(out).lower() if isinstance(out, bool) else out

    def string(self, node: Any) -> str:
        out = self.value(node)
        if not isinstance(out, str | int | float):
            raise TemplateValueError(f"{node} does not resolve to a value locally")
        return str(out)
