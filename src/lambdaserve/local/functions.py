"""The local stack's functions: which container serves a version (configured from the
version as moto stores it), the alias's pick for the gateway, and Lambda Invoke for the
endpoint — every caller (gateway, CLI, Step Functions) reaches the same workers."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lambdaserve.alias import AliasState
from lambdaserve.local.endpoint import function_and_qualifier
from lambdaserve.local.gateway import pick_version
from lambdaserve.local.layers import LayerFolders, zip_files
from lambdaserve.local.pool import WorkerPool
from lambdaserve.local.runtime import BuiltFunction
from lambdaserve.local.worker import Reply, VersionConfig, Worker, WorkerCrashedError
from lambdaserve.shared import budget


class LocalFunctions:
    """Function name -> its built code; versions -> containers."""

    def __init__(
        self,
        code_dirs: dict[str, Path],
        lambda_client: Callable[[], Any],
        layers: LayerFolders,
        credentials: Callable[[], dict[str, str]],
        state_dir: Path,
        log: Callable[[str], None] = print,
        output: Callable[[VersionConfig, str], None] | None = None,
        measured: Callable[[str, str, str, float, bool], None] | None = None,
        limit: Callable[[str], int] = lambda _: 10,
        worker: Callable[..., Worker] = Worker,  # a new environment (snapshot.py: restored)
    ) -> None:
        self.on_alias_change: Callable[[str], None] | None = None  # provisioned concurrency
        self.code_dirs, self.lam, self.layers = code_dirs, lambda_client, layers
        self.credentials = credentials
        self.pool = WorkerPool(self._configure, state_dir, log, output, limit, worker)
        self.measured = measured  # (function, alias, version, seconds, error) of each dispatch
        self._referenced: set[tuple[str, str]] = set()
        self._states: dict[str, AliasState] = {}
        self._sizes: dict[str, int] = {}  # layer ARN or code folder -> unzipped bytes
        self._lock = threading.Lock()

    def _configure(self, function: str, version: str) -> VersionConfig:
        config = self.lam().get_function_configuration(FunctionName=function, Qualifier=version)
        found = self.layers.version_config(
            function, version, dict(config), self.code_dirs[function]
        )
        # As Lambda gives every function its role's credentials: here, the local endpoint's.
        return replace(found, environment={**found.environment, **self.credentials()})

    def oversize(self, function: str, layers: list[str]) -> str | None:
        """Lambda's refusal of a configuration whose code and layers unzip to more than its
        limit (shared/budget.py), or None: the folders are what those zips unpack to."""
        name = function.rsplit(":function:", 1)[-1].split(":")[0]
        code = self.code_dirs.get(name)
        if code is None:
            return None
        size = self._sized(str(code), code)
        for arn in layers:
            try:
                size += self._sized(arn, self.layers.folder(arn))
            except LookupError:
                return None  # not a layer of this stack: moto answers as it does
        if size <= budget.LIMIT:
            return None
        return budget.LAMBDA_MESSAGE.format(limit=budget.LIMIT, size=size)

    def _sized(self, key: str, folder: Path) -> int:
        if key not in self._sizes:
            self._sizes[key] = budget.folder_bytes(folder)
        return self._sizes[key]

    def read_alias(self, function: str, name: str = "live") -> AliasState:
        """An alias's primary version and canary weights, as moto stores them."""
        return AliasState.from_alias(dict(self.lam().get_alias(FunctionName=function, Name=name)))

    def alias(self, function: str) -> tuple[str, dict[str, float]]:
        """`live` for the gateway; containers of versions it no longer routes to retire."""
        state = self.read_alias(function)
        now = {(function, v) for v in (state.version, *state.weights)}
        with self._lock:
            gone = {k for k in self._referenced if k[0] == function} - now
            self._referenced = (self._referenced - gone) | now
            previous = self._states.get(function)
            self._states[function] = state
        if gone:
            self.pool.retire(function, keep={v for _, v in now})
        if previous not in (None, state) and self.on_alias_change is not None:
            self.on_alias_change(function)
        return state.version, state.weights

    def dispatch(
        self, function: str, version: str, event: dict[str, Any]
    ) -> tuple[Reply, str, int]:
        """One API request on an environment of the version: the reply, the model version it
        serves, which environment (ThrottledError at the concurrency limit)."""
        with self.pool.lease(function, version) as worker:
            started = time.perf_counter()
            try:
                reply = worker.invoke(event, event.get("requestContext", {}).get("requestId"))
            except WorkerCrashedError:
                if self.measured is not None:
                    self.measured(function, "live", version, time.perf_counter() - started, True)
                raise
            if self.measured is not None:
                seconds = time.perf_counter() - started
                self.measured(function, "live", version, seconds, bool(reply.error))
            model = worker.config.environment.get("MODEL_VERSION", "")
            return reply, model, worker.environment

    def invoke(
        self, name: str, qualifier: str | None, payload: bytes
    ) -> tuple[bytes, str | None, str]:
        """Lambda Invoke: (payload, function error or None, executed version)."""
        function, qualifier = function_and_qualifier(name, qualifier)
        if function not in self.code_dirs:
            raise LookupError(f"Function not found: {name}")
        if qualifier is None or qualifier == "$LATEST":
            version = "$LATEST"
        elif qualifier.isdigit():
            version = qualifier
        else:
            state = self.read_alias(function, qualifier)
            # Traffic split, not a secret (bandit B311).
            version = pick_version(state.version, state.weights, random.random())  # nosec B311
        try:
            with self.pool.lease(function, version) as worker:
                reply = worker.invoke(json.loads(payload or b"{}"))
        except WorkerCrashedError as exc:
            error = {"errorType": "Runtime.ExitError", "errorMessage": str(exc)}
            return json.dumps(error).encode(), "Unhandled", version
        if reply.error:
            return json.dumps(reply.error).encode(), "Unhandled", version
        return json.dumps(reply.response).encode(), None, version


def create_function(
    lam: Any,
    name: str,
    built: BuiltFunction,
    role: str,
    layers: list[str],
    environment: dict[str, str],
    alias: bool,
) -> None:
    """A built function in moto as `sam deploy` leaves it: version 1, behind `live` if asked
    (moto stores the code; the workers run the build output's folders)."""
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler=built.handler,
        Code={"ZipFile": zip_files({"README": "code from the sam build output"})},
        Layers=layers,
        Environment={"Variables": environment},
        MemorySize=built.memory_mb,
        Timeout=built.timeout_s,
        Publish=True,
    )
    if alias:
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
