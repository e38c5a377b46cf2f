"""What a `sam deploy` does to a running stack's Lambda resources, by the rules CloudFormation
and CodeDeploy document: for the moto-backed tests and `lambdaserve local deploy`. Both
templates go through the real SAM transform (samtranslator), so the resources modelled are
the ones SAM makes of the template as written.

The rules encoded, and where AWS states them:

1. CloudFormation updates a resource only when its declaration in the template changed: it
   compares the new template with the previous one, never with live state ("Update behaviors
   of stack resources", AWS CloudFormation User Guide; drift-aware change sets exist to revert
   out-of-band changes). So an alias declared once and never changed is never moved by an
   update, and a hand move survives until an update that changes the declaration.
2. AWS::Lambda::Version has no updatable property: a new logical id publishes a version of
   $LATEST as the same update left it (AWS::Lambda::Version reference); SAM marks its version
   resources `DeletionPolicy: Retain`, so removed ones stay.
3. An AWS::Lambda::Alias whose declaration changed, with no UpdatePolicy, is set to it:
   FunctionVersion and routing as declared, overwriting wherever it pointed.
4. With `UpdatePolicy: CodeDeployLambdaAliasUpdate` (SAM's DeploymentPreference), CodeDeploy
   shifts the alias from the AppSpec's CurrentVersion (what the previous template declared) to
   its TargetVersion, and the deployment fails when
   a. the alias has routing weights: "subsequent deployments fail" until they are removed by
      hand (CodeDeploy User Guide, "Troubleshoot AWS Lambda deployment issues");
   b. the alias does not point at CurrentVersion: INVALID_LAMBDA_CONFIGURATION, "The Lambda
      function alias version does not match the current version in AppSpec file" (same page;
      aws/serverless-application-model issues #291 and #351).
5. A failed resource update fails the stack update, which CloudFormation rolls back: the
   function's configuration returns to what the previous template declared.

Resolution is local: parameters (SSM-typed ones read from SSM at each update, as CloudFormation
does), conditions, and the physical ids this stack knows (function names, layer ARNs, version
numbers). A value only AWS would know (a KMS key's ARN) keeps what the function has.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaserve.local.template import NO_VALUE, TemplateResolver, package, sam_transform

FUNCTION = "AWS::Lambda::Function"
VERSION = "AWS::Lambda::Version"
ALIAS = "AWS::Lambda::Alias"
CODEDEPLOY = "CodeDeployLambdaAliasUpdate"
# The function properties an update applies (what the template sets through parameters).
CONFIGURED = ("MemorySize", "Timeout", "Layers", "Environment")
_HASHED = re.compile(r"^(?P<name>[A-Za-z0-9]+?)[0-9a-f]{10}$")  # SAM's layer logical ids
UNKNOWN = object()


class StackUpdateError(Exception):
    """A stack update CloudFormation rolled back; the reason is its one line."""


@dataclass
class DeployedStack:
    """What CloudFormation remembers of a stack between updates: the template and parameters
    it last applied, and the physical id of each resource this model follows."""

    template: dict[str, Any]
    parameters: dict[str, str]
    physical: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.__dict__), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> DeployedStack:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


class _Resolved:
    """One template, transformed and resolved for one set of parameter values."""

    def __init__(
        self, stack: DeployedStack, ssm: Any, region: str, physical: dict[str, str]
    ) -> None:
        self.cfn = sam_transform(package(stack.template), stack.parameters, region)
        self.physical = physical
        values = dict(stack.parameters)
        for name, spec in self.cfn.get("Parameters", {}).items():
            given = values.get(name, spec.get("Default"))
            if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value") and given:
                values[name] = ssm.get_parameter(Name=given)["Parameter"]["Value"]
        self.resolver = TemplateResolver(self.cfn, values)

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.cfn["Resources"].items() if v["Type"] == kind}

    def physical_of(self, logical: str) -> Any:
        if logical in self.physical:
            return self.physical[logical]
        hashed = _HASHED.match(logical)
        return self.physical.get(hashed["name"], UNKNOWN) if hashed else UNKNOWN

    def value(self, node: Any) -> Any:
        """A property with parameters, conditions and known resources resolved."""
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v is not NO_VALUE]
        if isinstance(node, dict) and len(node) == 1 and _intrinsic(next(iter(node))):
            out = self.resolver.value(node)
            if out is NO_VALUE or not isinstance(out, dict | list):
                return out
            if isinstance(out, dict) and "Ref" in out:
                return self.physical_of(out["Ref"])
            if isinstance(out, dict) and "Fn::GetAtt" in out:
                logical, attribute = out["Fn::GetAtt"]
                return self.physical_of(logical) if attribute == "Version" else UNKNOWN
            if isinstance(out, dict) and next(iter(out)).startswith("Fn::"):
                return UNKNOWN  # Sub/Join of resources: only AWS knows
            return self.value(out)
        if isinstance(node, dict):
            resolved = {k: self.value(v) for k, v in node.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        return node

    def function(self, logical: str) -> dict[str, Any]:
        props = self.cfn["Resources"][logical]["Properties"]
        return {k: self.value(props[k]) for k in CONFIGURED if k in props}

    def alias(self, logical: str) -> dict[str, Any]:
        resource = self.cfn["Resources"][logical]
        props = self.value(resource["Properties"])
        return {
            "function": props["FunctionName"],
            "name": props["Name"],
            "version": props["FunctionVersion"],
            "routing": props.get("RoutingConfig", {}),
            "codedeploy": CODEDEPLOY in resource.get("UpdatePolicy", {}),
        }


def _intrinsic(key: str) -> bool:
    return key in ("Ref", "Condition") or key.startswith("Fn::")


class CloudFormation:
    """Applies template and parameter changes to a stack's Lambda resources (rules above)."""

    def __init__(self, lambda_client: Any, ssm: Any, region: str) -> None:
        self.lam, self.ssm, self.region = lambda_client, ssm, region

    def adopt(
        self, template: dict[str, Any], parameters: dict[str, str], physical: dict[str, str]
    ) -> DeployedStack:
        """The record of a stack a first `sam deploy` created: each version resource is the
        version its function's alias pointed at then (`physical` names the rest)."""
        stack = DeployedStack(template, dict(parameters), dict(physical))
        resolved = _Resolved(stack, self.ssm, self.region, stack.physical)
        for logical, resource in resolved.resources(ALIAS).items():
            version = resource["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
            props = resolved.value(resource["Properties"])
            found = self.lam.get_alias(FunctionName=props["FunctionName"], Name=props["Name"])
            stack.physical.setdefault(version, found["FunctionVersion"])
            stack.physical.setdefault(logical, found["AliasArn"])
        return stack

    def update(
        self, stack: DeployedStack, template: dict[str, Any], parameters: dict[str, str]
    ) -> tuple[DeployedStack, list[str]]:
        """`sam deploy` of `template` with `parameters` over `stack`: the new record and what
        was done, one line each; StackUpdateError (rolled back) when CodeDeploy refuses."""
        before = _Resolved(stack, self.ssm, self.region, stack.physical)
        physical = dict(stack.physical)
        applied = DeployedStack(template, dict(parameters))
        after = _Resolved(applied, self.ssm, self.region, physical)
        done: list[str] = []
        restore: dict[str, dict[str, Any]] = {}
        try:
            for logical in after.resources(FUNCTION):
                if logical not in physical or logical not in before.cfn["Resources"]:
                    continue
                old, new = before.function(logical), after.function(logical)
                if old != new:
                    name = physical[logical]
                    restore[name] = self._configure(name, old, new)
                    done.append(f"updated {logical} ({', '.join(sorted(_changed(old, new)))})")
            for logical, resource in after.resources(VERSION).items():
                if logical not in physical:
                    function = after.value(resource["Properties"]["FunctionName"])
                    physical[logical] = self.lam.publish_version(FunctionName=function)["Version"]
                    done.append(f"created {logical}: {function} version {physical[logical]}")
            for logical in after.resources(ALIAS):
                old_alias = before.alias(logical) if logical in before.resources(ALIAS) else None
                new_alias = after.alias(logical)
                if old_alias is not None and _declared(old_alias) == _declared(new_alias):
                    continue  # rule 1: the declaration did not change, the alias is not touched
                done.append(self._move(old_alias, new_alias, logical))
        except StackUpdateError:
            for name, config in restore.items():  # rule 5
                self.lam.update_function_configuration(FunctionName=name, **config)
            raise
        return DeployedStack(template, dict(parameters), physical), done

    def _configure(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Apply the changed properties to $LATEST; returns what undoes it."""
        current = self.lam.get_function_configuration(FunctionName=name)
        now = {
            "MemorySize": current["MemorySize"],
            "Timeout": current["Timeout"],
            "Layers": [x["Arn"] for x in current.get("Layers", [])],
            "Environment": {"Variables": dict(current.get("Environment", {}).get("Variables", {}))},
        }
        wanted = {k: now[k] for k in CONFIGURED}
        for key in _changed(old, new):
            if key == "Environment":
                variables = dict(now["Environment"]["Variables"])
                for k, v in new.get(key, {}).get("Variables", {}).items():
                    if v is not UNKNOWN:  # only AWS knows it: the function keeps its value
                        variables[k] = str(v)
                wanted[key] = {"Variables": variables}
            elif key == "Layers":
                wanted[key] = [x for x in new.get(key, []) if x is not UNKNOWN]
            else:
                wanted[key] = int(new[key]) if key in new else now[key]  # Number parameters
        self.lam.update_function_configuration(FunctionName=name, **wanted)
        return now

    def _move(self, old: dict[str, Any] | None, new: dict[str, Any], logical: str) -> str:
        function, name, target = new["function"], new["name"], str(new["version"])
        alias = self.lam.get_alias(FunctionName=function, Name=name)
        if not new["codedeploy"]:  # rule 3
            self.lam.update_alias(
                FunctionName=function,
                Name=name,
                FunctionVersion=target,
                RoutingConfig={"AdditionalVersionWeights": {}},
            )
            return f"updated {logical}: {name} {alias['FunctionVersion']} -> {target}"
        weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
        if weights:  # rule 4a
            raise StackUpdateError(
                f"CodeDeploy deployment of {function}:{name} failed: the alias has routing "
                f"weights {weights} (UPDATE_ROLLBACK_COMPLETE)"
            )
        current = str(old["version"]) if old else alias["FunctionVersion"]
        if alias["FunctionVersion"] != current:  # rule 4b
            raise StackUpdateError(
                f"CodeDeploy deployment of {function}:{name} failed: INVALID_LAMBDA_CONFIGURATION "
                "The Lambda function alias version does not match the current version in "
                f"AppSpec file (alias {alias['FunctionVersion']}, AppSpec CurrentVersion "
                f"{current}) (UPDATE_ROLLBACK_COMPLETE)"
            )
        self.lam.update_alias(FunctionName=function, Name=name, FunctionVersion=target)
        return f"CodeDeploy shifted {name} {current} -> {target}"


def _declared(alias: dict[str, Any]) -> tuple[Any, ...]:
    return (alias["function"], alias["name"], str(alias["version"]), json.dumps(alias["routing"]))


def _changed(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    return {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
