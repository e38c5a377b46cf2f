"""Warm Lambda containers: processes per function version, started when a request needs one.

Each worker is a clean Python 3.12 (`-I -S`) whose sys.path holds only the version's code
folder, its layers' python/ folders and a /var/runtime stand-in, with the version's own
environment. Like Lambda, it imports the handler once (init, the cold start) and then serves
one request at a time; its stdout/stderr (the function's logs) go to a sink, prefixed. A
version has as many of them as its concurrent requests need, up to a limit (pool.py).
"""

from __future__ import annotations

import json
import os
import select

# Runs our own interpreter on our own bootstrap, no shell (bandit B404).
import subprocess  # nosec B404
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from lambdaserve.local.process import base_python, lambda_process_env

# The process Lambda would run: import the handler once (init), then serve requests from
# stdin, one JSON line each, answering on a pipe. Asked to, it also says where every module
# came from and which were compiled from source (the built-artifact tests read both).
_BOOTSTRAP = r"""
import gc, importlib, importlib._bootstrap_external as external, json, os, sys, time, traceback
import resource
paths, module, function, fd, tail = json.loads(sys.argv[1])
sys.path[:0] = paths
out = os.fdopen(fd, "w")
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
def peak_kb():
    # This process image's peak resident size (VmHWM: getrusage's ru_maxrss would also count
    # the parent it was forked from, since it survives exec).
    try:
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def serve(out):
    for line in sys.stdin:
        request = json.loads(line)
        meta = request["context"]
        meta["deadline"] = time.time() + meta.pop("timeout")
        t1 = time.perf_counter()
        try:
            reply = {"response": handler(request["event"], Context(meta))}
        except Exception as exc:
            reply = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc),
                               "stackTrace": traceback.format_tb(exc.__traceback__)}}
        reply["duration_seconds"] = time.perf_counter() - t1
        reply["max_rss_kb"] = peak_kb()
        if request.get("introspect"):
            loaded = list(sys.modules.items())
            reply["modules"] = {n: getattr(m, "__file__", None) for n, m in loaded}
            reply["compiled"] = compiled
            reply["frozen"] = gc.get_freeze_count()
        out.write(json.dumps(reply) + "\n")
        out.flush()
t0 = time.perf_counter()
handler = getattr(importlib.import_module(module), function)
init = time.perf_counter() - t0
exec(tail)
"""
# What an on-demand environment does after init: say so, then serve.
_SERVE = r"""
out.write(json.dumps({"init_seconds": init}) + "\n")
out.flush()
serve(out)
"""


class WorkerCrashedError(RuntimeError):
    """The container died (or timed out) before answering; the request gets a 502."""


@dataclass(frozen=True)
class VersionConfig:
    """What Lambda would run for one function version."""

    function: str
    version: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    memory_mb: int = 1024
    timeout_s: int = 29
    arn: str = ""


@dataclass
class Reply:
    """A handler's answer (or its unhandled error) and how long it took."""

    response: Any
    error: dict[str, Any] | None
    duration_seconds: float
    init_seconds: float | None = None  # this request's cold start (init, or restore)
    restored: bool = False  # the cold start was a restore from a SnapStart snapshot
    modules: dict[str, str | None] | None = None  # asked for with introspect
    compiled: list[str] | None = None
    frozen: int | None = None  # objects in the collector's permanent generation (introspect)
    max_memory_mb: int = 0  # the environment's peak resident size so far (Lambda's REPORT)


@dataclass
class Worker:
    """One warm container for one function version."""

    config: VersionConfig
    runtime_dir: Path
    log: Callable[[str], None] = print
    # Each line the function writes, as Lambda hands it to CloudWatch Logs (local/logs.py).
    output: Callable[[VersionConfig, str], None] | None = None
    environment: int = 1  # which of the version's environments (the gateway says it)
    python: str = field(default_factory=base_python)
    _process: Any = field(default=None, repr=False)  # a Popen, or a restored environment
    _reader: int = -1
    _buffer: bytes = b""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pumps: list[threading.Thread] = field(default_factory=list, repr=False)
    restores: ClassVar[bool] = False  # its cold start restores a snapshot (snapshot.py)

    @property
    def label(self) -> str:
        return f"{self.config.function}:{self.config.version}"

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Initialise now, ahead of a request (provisioned concurrency)."""
        with self._lock:
            if not self.alive:
                self._start()

    def _start(self) -> float:
        self.stop()  # a container that died while idle is simply replaced, as in Lambda
        started = time.perf_counter()
        self._process, self._reader = self._spawn()
        self._buffer = b""
        if self._process.stdout is None or self._process.stderr is None:
            raise WorkerCrashedError(f"{self.label} has no output pipes")
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream,), daemon=True)
            for stream in (self._process.stdout, self._process.stderr)
        ]
        for pump in self._pumps:
            pump.start()
        ready = self._read_line(timeout=10 + 60)  # Lambda's init limit is 10 s; be lenient
        return self._ready(ready, time.perf_counter() - started)

    def _ready(self, ready: dict[str, Any], _elapsed: float) -> float:
        """Log the finished init (Lambda's INIT_START line); its duration is the cold start."""
        init = float(ready["init_seconds"])
        self.log(
            f"[{self.label}] INIT_START pid {self.pid} env {self.environment} "
            f"Init Duration: {init * 1000:.1f} ms"
        )
        return init

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _command(self, tail: str, fd: int) -> tuple[list[str], dict[str, str]]:
        """The interpreter's argv and environment for this version, ending with `tail`."""
        module, function = self.config.handler.rsplit(".", 1)
        paths = [str(self.config.code_dir)]
        paths += [str(d / "python") for d in self.config.layer_dirs if (d / "python").is_dir()]
        paths.append(str(self.runtime_dir))
        env = lambda_process_env(
            name=self.config.function,
            version=self.config.version,
            memory_mb=self.config.memory_mb,
            code_dir=self.config.code_dir,
            region="us-east-1",
            environment=dict(self.config.environment),
        )
        args = json.dumps([paths, module, function, fd, tail])
        # -u: -I ignores PYTHONUNBUFFERED, and a buffered stdout would lose the function's
        # last prints (its EMF metrics) when it is stopped.
        return [self.python, "-I", "-S", "-u", "-c", _BOOTSTRAP, args], env

    def _spawn(self) -> tuple[Any, int]:
        """A new process for this environment, and the end of its reply pipe."""
        read_end, write_end = os.pipe()
        argv, env = self._command(_SERVE, write_end)
        process = subprocess.Popen(  # nosec B603 - our interpreter, fixed argv, no shell
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=self.config.code_dir,
            pass_fds=(write_end,),
            start_new_session=True,
        )
        os.close(write_end)
        return process, read_end

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if self.output is not None:
                self.output(self.config, line)
            self.log(f"[{self.label}] {line}")

    def _read_line(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise WorkerCrashedError(f"{self.label} timed out after {timeout:.0f} s")
            ready, _, _ = select.select([self._reader], [], [], left)
            if ready:
                chunk = os.read(self._reader, 1 << 16)
                if not chunk:
                    code = self._process.wait() if self._process else None
                    self.stop()
                    raise WorkerCrashedError(f"{self.label} exited (code {code})")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def invoke(
        self, event: Any, request_id: str | None = None, *, introspect: bool = False
    ) -> Reply:
        """Serve one event, cold-starting the container first if it is not running."""
        with self._lock:
            init = None if self.alive else self._start()
            if self._process is None or self._process.stdin is None:
                raise WorkerCrashedError(f"{self.label} is not running")
            request = {
                "introspect": introspect,
                "event": event,
                "context": {
                    "function_name": self.config.function,
                    "function_version": self.config.version,
                    "invoked_function_arn": self.config.arn,
                    "memory_limit_in_mb": self.config.memory_mb,
                    "aws_request_id": request_id or str(uuid.uuid4()),
                    "log_group_name": f"/aws/lambda/{self.config.function}",
                    "log_stream_name": f"local/[{self.config.version}]",
                    "timeout": self.config.timeout_s,
                },
            }
            try:
                self._process.stdin.write(json.dumps(request).encode() + b"\n")
                self._process.stdin.flush()
            except (BrokenPipeError, OSError):
                self.stop()
                raise WorkerCrashedError(f"{self.label} is not running") from None
            reply = self._read_line(timeout=self.config.timeout_s + 1)
            duration = float(reply.get("duration_seconds", 0.0))
            memory = int(reply.get("max_rss_kb", 0)) // 1024
            # As Lambda's REPORT line: the environment's peak memory so far.
            self.log(
                f"[{self.label}] REPORT Duration: {duration * 1000:.1f} ms "
                f"Max Memory Used: {memory} MB"
            )
            return Reply(
                reply.get("response"),
                reply.get("error"),
                duration,
                init,
                restored=init is not None and self.restores,
                modules=reply.get("modules"),
                compiled=reply.get("compiled"),
                frozen=reply.get("frozen"),
                max_memory_mb=memory,
            )

    def stop(self) -> None:
        """End the container (its whole process group)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        for pump in self._pumps:  # every line the function wrote reaches the log
            pump.join(timeout=5)
        self._pumps = []
        if self._reader >= 0:
            os.close(self._reader)
            self._reader = -1
