"""Run built Lambda functions on this machine, without Docker, the way Lambda lays them out.

A function runs in a fresh Python 3.12 process started with `-I -S`: no site-packages, no
user paths, only the function folder (Lambda's /var/task) and its layers' `python/` folders
(Lambda's /opt/python) on sys.path, and the environment the template gives the function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The process Lambda would run: import the handler (init), then invoke it once.
_BOOTSTRAP = r"""
import importlib, json, sys, time
paths, module, function, event_path, out_path = json.loads(sys.argv[1])
sys.path[:0] = paths
class Context:
    def __init__(self, meta):
        self.__dict__.update(meta)
    def get_remaining_time_in_millis(self):
        return max(0, int((self.deadline - time.time()) * 1000))
meta = json.loads(sys.argv[2])
t0 = time.perf_counter()
handler = getattr(importlib.import_module(module), function)
t1 = time.perf_counter()
with open(event_path) as fh:
    event = json.load(fh)
meta["deadline"] = time.time() + meta.pop("timeout")
response = handler(event, Context(meta))
t2 = time.perf_counter()
origins = {name: getattr(mod, "__file__", None) for name, mod in list(sys.modules.items())}
with open(out_path, "w") as fh:
    json.dump({"response": response, "init_seconds": t1 - t0, "duration_seconds": t2 - t1,
               "modules": origins}, fh)
"""


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
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_CfnLoader)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a template")
    return data


class TemplateValueError(ValueError):
    """A template value the local runner cannot resolve without AWS."""


def _resolve(value: Any, parameters: dict[str, Any], overrides: dict[str, str]) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if name in overrides:
            return overrides[name]
        if name in parameters:
            return str(parameters[name].get("Default", ""))
        raise TemplateValueError(f"cannot resolve Ref {name} locally")
    if isinstance(value, dict):
        raise TemplateValueError(f"cannot resolve {next(iter(value))} locally")
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class BuiltFunction:
    """One function of a `sam build` output: code folder, layer folders, settings."""

    logical_id: str
    code_dir: Path
    handler: str
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    memory_mb: int
    timeout_s: int

    @classmethod
    def from_build(
        cls,
        build_dir: Path,
        logical_id: str = "PredictFunction",
        parameter_overrides: dict[str, str] | None = None,
    ) -> BuiltFunction:
        """Read the function's settings from the built template (Globals merged in)."""
        build_dir = Path(build_dir).resolve()
        template = load_template(build_dir / "template.yaml")
        params = template.get("Parameters", {})
        overrides = parameter_overrides or {}
        glob = template.get("Globals", {}).get("Function", {})
        props = {**glob, **template["Resources"][logical_id]["Properties"]}
        env = {
            **glob.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        layers = []
        for ref in props.get("Layers", []):
            if not (isinstance(ref, dict) and "Ref" in ref):
                raise TemplateValueError(f"layer {ref} is not a layer of this template")
            layers.append(build_dir / ref["Ref"])
        return cls(
            logical_id=logical_id,
            code_dir=build_dir / str(props["CodeUri"]),
            handler=str(props["Handler"]),
            layer_dirs=tuple(layers),
            environment={k: _resolve(v, params, overrides) for k, v in env.items()},
            memory_mb=int(_resolve(props.get("MemorySize", 128), params, overrides)),
            timeout_s=int(_resolve(props.get("Timeout", 3), params, overrides)),
        )

    @property
    def sys_path(self) -> list[str]:
        """sys.path entries as Lambda orders them: /var/task, then /opt/python."""
        return [str(self.code_dir)] + [str(d / "python") for d in self.layer_dirs]


@dataclass
class Invocation:
    """What one isolated invocation returned and how long it took."""

    response: dict[str, Any]
    init_seconds: float
    duration_seconds: float
    modules: dict[str, str | None]
    logs: str = field(repr=False, default="")


def base_python() -> str:
    """The interpreter behind this venv (a clean 3.12, not the venv's site-packages)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def invoke_isolated(
    function: BuiltFunction,
    event: dict[str, Any],
    env: dict[str, str] | None = None,
    python: str | None = None,
) -> Invocation:
    """Cold-start the function in a fresh process and invoke it with one event."""
    module, handler = function.handler.rsplit(".", 1)
    version = (env or {}).get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    name = f"local-{function.logical_id}"
    process_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task and /opt are read-only in Lambda
        # No X-Ray daemon here: traces would only produce "segment not found" noise.
        "POWERTOOLS_TRACE_DISABLED": "true",
        **function.environment,
        **(env or {}),
    }
    meta = {
        "function_name": name,
        "function_version": version,
        "invoked_function_arn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        "memory_limit_in_mb": function.memory_mb,
        "aws_request_id": str(uuid.uuid4()),
        "log_group_name": f"/aws/lambda/{name}",
        "log_stream_name": "local",
        "timeout": function.timeout_s,
    }
    with tempfile.TemporaryDirectory(prefix="lambdaserve-invoke-") as tmp:
        event_path, out_path = Path(tmp) / "event.json", Path(tmp) / "out.json"
        event_path.write_text(json.dumps(event), encoding="utf-8")
        args = json.dumps([function.sys_path, module, handler, str(event_path), str(out_path)])
        proc = subprocess.run(
            [python or base_python(), "-I", "-S", "-c", _BOOTSTRAP, args, json.dumps(meta)],
            env=process_env,
            cwd=function.code_dir,
            capture_output=True,
            text=True,
            timeout=function.timeout_s + 60,
            check=False,
        )
        if proc.returncode != 0 or not out_path.exists():
            raise RuntimeError(
                f"the function process failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        result = json.loads(out_path.read_text(encoding="utf-8"))
    return Invocation(
        response=result["response"],
        init_seconds=result["init_seconds"],
        duration_seconds=result["duration_seconds"],
        modules=result["modules"],
        logs=proc.stdout + proc.stderr,
    )
