"""Run built Lambda functions on this machine, without Docker, the way Lambda lays them out
(the template is read by template.py).

A function runs in a fresh Python 3.12 process started with `-I -S`: no site-packages, no
user paths, only the function folder (Lambda's /var/task) and its layers' `python/` folders
(Lambda's /opt/python) on sys.path, and the environment the template gives the function.
"""

from __future__ import annotations

import importlib
import json
import os

# Runs our own interpreter on our own bootstrap, no shell (bandit B404).
import subprocess  # nosec B404
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaserve.local.template import NO_VALUE, TemplateResolver, TemplateValueError, load_template

# The process Lambda would run: import the handler (init), then invoke it once.
_BOOTSTRAP = r"""
import importlib, importlib._bootstrap_external as external, json, sys, time
paths, module, function, event_path, out_path = json.loads(sys.argv[1])
sys.path[:0] = paths
compiled = []  # every module compiled from source instead of loaded from bytecode
_source_to_code = external.SourceLoader.source_to_code
def source_to_code(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return _source_to_code(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = source_to_code
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
               "modules": origins, "compiled": compiled}, fh)
"""


# What Lambda's python3.12 runtime itself puts on sys.path after the layers (/var/runtime).
LAMBDA_RUNTIME_MODULES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six",
)


def lambda_runtime_dir(dest: Path) -> Path:
    """A folder standing in for /var/runtime: boto3 and its dependencies, linked from here."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in LAMBDA_RUNTIME_MODULES:
        module = importlib.import_module(name)
        origin = Path(str(module.__file__))
        source = origin.parent if origin.name == "__init__.py" else origin
        link = dest / source.name
        if not link.exists():
            link.symlink_to(source)
    return dest


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
        resolver = TemplateResolver(template, parameter_overrides)
        glob = template.get("Globals", {}).get("Function", {})
        props = {**glob, **template["Resources"][logical_id]["Properties"]}
        env = {
            **glob.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        layers = []
        for entry in props.get("Layers", []):
            layer = resolver.value(entry)
            if layer is NO_VALUE:
                continue
            if not (isinstance(layer, dict) and layer.get("Ref") in template["Resources"]):
                raise TemplateValueError(f"layer {layer} is not built here (a published layer?)")
            layers.append(build_dir / layer["Ref"])
        environment = {}
        for key, raw in env.items():
            resolved = resolver.value(raw)
            if resolved is not NO_VALUE and isinstance(resolved, str | int | float):
                environment[key] = str(resolved)
        return cls(
            logical_id=logical_id,
            code_dir=build_dir / str(props["CodeUri"]),
            handler=str(props["Handler"]),
            layer_dirs=tuple(layers),
            environment=environment,
            memory_mb=int(resolver.string(props.get("MemorySize", 128))),
            timeout_s=int(resolver.string(props.get("Timeout", 3))),
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
    compiled: list[str] = field(default_factory=list)
    logs: str = field(repr=False, default="")


def base_python() -> str:
    """The interpreter behind this venv (a clean 3.12, not the venv's site-packages)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def lambda_process_env(
    *,
    name: str,
    version: str,
    memory_mb: int,
    code_dir: Path,
    region: str,
    environment: dict[str, str],
) -> dict[str, str]:
    """The environment Lambda gives a function's process, then the function's own variables."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "LAMBDA_TASK_ROOT": str(code_dir),
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task and /opt are read-only in Lambda
        # No X-Ray daemon here: traces would only produce "segment not found" noise.
        "POWERTOOLS_TRACE_DISABLED": "true",
        **environment,
    }


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
    process_env = lambda_process_env(
        name=name,
        version=version,
        memory_mb=function.memory_mb,
        code_dir=function.code_dir,
        region=os.environ.get("AWS_REGION", "us-east-1"),
        environment={**function.environment, **(env or {})},
    )
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
        paths = [*function.sys_path, str(lambda_runtime_dir(Path(tmp) / "var-runtime"))]
        args = json.dumps([paths, module, handler, str(event_path), str(out_path)])
        # Fixed argv, no shell, no user input in the command (bandit B603).
        proc = subprocess.run(  # nosec B603
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
        compiled=result["compiled"],
        logs=proc.stdout + proc.stderr,
    )
