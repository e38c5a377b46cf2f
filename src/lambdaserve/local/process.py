"""The process a local Lambda function runs in: the interpreter, the environment Lambda gives
it, a stand-in for /var/runtime; and the local stack's own process (state folder, signals)."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

# What Lambda's python3.12 runtime itself puts on sys.path after the layers (/var/runtime).
LAMBDA_RUNTIME_MODULES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six",
    "snapshot_restore_py",  # SnapStart's runtime hooks (local/snapshot.py runs them)
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


def up_command(port: int, aws_port: int, state_dir: Path | str, *extra: str) -> list[str]:
    """`lambdaserve local up` on these ports and state folder, from this venv: how the e2e tests
    and the benchmarks start a stack of their own."""
    return [
        str(Path(sys.executable).parent / "lambdaserve"),
        "local",
        "up",
        "--port",
        str(port),
        "--aws-port",
        str(aws_port),
        "--state-dir",
        str(state_dir),
        *extra,
    ]


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
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
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


def fresh_state_dir(state_dir: Path) -> None:
    """The state folder, with no model layer unpacked by an earlier run (AWS state starts
    empty each time, so their layer ARNs mean nothing now)."""
    shutil.rmtree(state_dir / "layers", ignore_errors=True)
    state_dir.mkdir(parents=True, exist_ok=True)


def wait_for_signal() -> None:
    """Block until Ctrl-C or SIGTERM (the caller then stops the stack)."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
