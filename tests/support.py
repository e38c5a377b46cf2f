"""Paths and event files the tests share (imported, unlike conftest, which pytest owns)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from aws_lambda_powertools.logging import logger as pt_logger
from aws_lambda_powertools.metrics.provider import cold_start as pt_cold_start

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
class InProcessInvoker:
    """Lambda Invoke without Docker: runs the real predict handler in this process with the
    configuration of the requested version as the Lambda API reports it (environment, layers),
    the model layer unpacked from the zip that version's layer ARN was published from."""

    lambda_client: Any
    layer_zips: Callable[[str], bytes]
    workdir: Path
    calls: list[tuple[str, str]] = field(default_factory=list)
    _containers: dict[tuple[str, str], tuple[ModuleType, dict[str, str]]] = field(
        default_factory=dict
    )

    def _container(self, function: str, qualifier: str) -> tuple[ModuleType, dict[str, str]]:
        key = (function, qualifier)
        if key not in self._containers:
            config = self.lambda_client.get_function_configuration(
                FunctionName=function, Qualifier=qualifier
            )
            model_layer = config["Layers"][-1]["Arn"]
            opt = self.workdir / f"{function}-{qualifier}"
            with zipfile.ZipFile(io.BytesIO(self.layer_zips(model_layer))) as archive:
                archive.extractall(opt)
            env = {
                **config.get("Environment", {}).get("Variables", {}),
                "MODEL_DIR": str(opt / "model"),
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
            with environment(env):
                module = import_fresh(ROOT / "functions/predict/app.py", f"predict_{qualifier}")
            self._containers[key] = (module, env)
        return self._containers[key]

    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> Any:
        self.calls.append((function, qualifier))
        module, env = self._container(function, qualifier)
        context = SimpleNamespace(
            function_name=function,
            function_version=qualifier,
            memory_limit_in_mb=1024,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
            aws_request_id=str(uuid.uuid4()),
            get_remaining_time_in_millis=lambda: 29_000,
        )
        with environment(env):
            return module.lambda_handler(event, context)


def packaged_template() -> dict[str, Any]:
    """template.yaml as `sam package` hands it to CloudFormation."""
    from lambdaserve.local.build import packaged_template as packaged

    return packaged(ROOT / "template.yaml")
