"""Batch scoring on the local stack: the BatchScoring state machine as the template defines
it, run by moto's own Step Functions executor (the Distributed Map included)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from lambdaserve.local.template import TemplateResolver


def enable_state_machine_execution(moto_url: str, invoke_port: int) -> None:
    """Have moto execute state machines (it only records them by default), sending their
    Lambda tasks to `invoke_port`: the local endpoint, whose Invoke runs the workers."""
    # moto's executor builds its clients for http://localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(invoke_port)
    request = urllib.request.Request(
        f"{moto_url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # nosec B310
        pass


def create_state_machine(
    sfn: Any, name: str, definition: str, role: str, moto_url: str, invoke_port: int
) -> str:
    """The state machine in moto, executed by moto with its Lambda tasks sent to Invoke."""
    enable_state_machine_execution(moto_url, invoke_port)
    created = sfn.create_state_machine(
        name=name, definition=definition, roleArn=role, type="STANDARD"
    )
    return str(created["stateMachineArn"])


def state_machine_definition(
    build_dir: Path, template: dict[str, Any], parameters: dict[str, str], function_alias: str
) -> str:
    """BatchScoring's definition with its substitutions made as CloudFormation would make
    them: the parameters' values and the batch function alias's ARN."""
    props = template["Resources"]["BatchScoring"]["Properties"]
    definition = (Path(build_dir) / str(props["DefinitionUri"])).read_text(encoding="utf-8")
    resolver = TemplateResolver(template, parameters)
    for name, raw in props.get("DefinitionSubstitutions", {}).items():
        value = function_alias if name == "BatchFunctionAlias" else resolver.string(raw)
        if name == "ToleratedFailurePercentage":
            # moto's ASL grammar takes only a decimal here (AWS takes 0 and 0.0 alike).
            value = str(float(value))
        definition = definition.replace("${" + name + "}", str(value))
    json.loads(definition)  # every substitution made: the definition is JSON again
    return definition
