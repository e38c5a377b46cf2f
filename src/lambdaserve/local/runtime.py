"""Run built Lambda functions on this machine, without Docker, the way Lambda lays them out
(the template is read by template.py, the process is worker.py's).

A function runs in a fresh Python 3.12 process started with `-I -S`: no site-packages, no
user paths, only the function folder (Lambda's /var/task) and its layers' `python/` folders
(Lambda's /opt/python) on sys.path, and the environment the template gives the function.
`invoke_isolated` is one cold start and one invocation: a worker started, invoked, stopped.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaserve.local.process import base_python, lambda_runtime_dir
from lambdaserve.local.template import NO_VALUE, TemplateResolver, TemplateValueError, load_template
from lambdaserve.local.worker import VersionConfig, Worker


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

    def config(
        self, version: str = "$LATEST", environment: dict[str, str] | None = None
    ) -> VersionConfig:
        """What a worker runs for this built function, as a version named `local-<id>`."""
        name = f"local-{self.logical_id}"
        return VersionConfig(
            function=name,
            version=version,
            handler=self.handler,
            code_dir=self.code_dir,
            layer_dirs=self.layer_dirs,
            environment={**self.environment, **(environment or {})},
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
            arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        )


@dataclass
class Invocation:
    """What one isolated invocation returned and how long it took."""

    response: dict[str, Any]
    init_seconds: float
    duration_seconds: float
    modules: dict[str, str | None]
    compiled: list[str] = field(default_factory=list)
    logs: str = field(repr=False, default="")
    frozen: int = 0  # objects init left frozen out of the collector's way (collector.py)
    max_memory_mb: int = 0  # the process's peak resident size (Lambda's Max Memory Used)


class FunctionFailedError(RuntimeError):
    """The handler raised (Lambda's Unhandled error); the message carries its trace."""


def invoke_isolated(
    function: BuiltFunction,
    event: dict[str, Any],
    env: dict[str, str] | None = None,
    python: str | None = None,
) -> Invocation:
    """Cold-start the function in a fresh process, invoke it with one event, stop it."""
    version = (env or {}).get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    logs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lambdaserve-invoke-") as tmp:
        worker = Worker(
            function.config(version, env),
            lambda_runtime_dir(Path(tmp) / "var-runtime"),
            logs.append,
            python=python or base_python(),
        )
        try:
            reply = worker.invoke(event, introspect=True)
        finally:
            worker.stop()
    if reply.error:
        trace = "".join(reply.error.get("stackTrace", []))
        raise FunctionFailedError(
            f"{reply.error.get('errorType')}: {reply.error.get('errorMessage')}\n{trace}"
        )
    return Invocation(
        response=reply.response,
        init_seconds=reply.init_seconds or 0.0,
        duration_seconds=reply.duration_seconds,
        modules=reply.modules or {},
        compiled=reply.compiled or [],
        logs="\n".join(logs),
        frozen=reply.frozen or 0,
        max_memory_mb=reply.max_memory_mb,
    )
