"""Running `lambdaserve local up` for the e2e tests, as a user runs it, and talking to it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import ROOT

from lambdaserve.local.http import free_port
from lambdaserve.local.process import up_command


@dataclass
class Running:
    """A `lambdaserve local up` process and what it printed."""

    process: subprocess.Popen[str]
    url: str
    env: dict[str, str]
    state_dir: Path
    logs: list[str] = field(default_factory=list)

    def worker_pids(self, version: str) -> list[int]:
        """Every environment of the predict function's version started so far, oldest first."""
        return [
            int(m[1])
            for line in self.logs
            if (m := re.search(rf"PredictFunction:{version}\] INIT_START pid (\d+)", line))
        ]

    def worker_pid(self, version: str) -> int:
        pids = self.worker_pids(version)
        assert pids, f"no container started for version {version}"
        return pids[-1]

    def call(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        """A request with the stack's API key, as a client of the deployed API sends it."""
        return request(f"{self.url}{path}", body, key=self.env["LAMBDASERVE_API_KEY"], **kwargs)

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's AWS endpoint, as its exported environment names it."""
        import boto3

        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "lambdaserve"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def request(
    url: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    content_type: str = "application/json",
    key: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(
        url,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": content_type, **({"x-api-key": key} if key else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            status, headers, payload = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, payload = error.code, dict(error.headers), error.read()
    return status, headers, json.loads(payload) if payload else None


def processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def running_stack(
    sam_build: Path, tmp_path_factory: pytest.TempPathFactory, *extra: str
) -> Iterator[Running]:
    """`lambdaserve local up` in its own process (with `extra` options), until it is stopped."""
    state = tmp_path_factory.mktemp("local-state")
    port, aws_port = free_port(), free_port()
    process = subprocess.Popen(
        up_command(
            port, aws_port, state, "--seed", "20261126", "--build-dir", str(sam_build), *extra
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Running(process, "", {}, state)
    stderr = process.stderr
    assert stderr is not None
    threading.Thread(
        target=lambda: running.logs.extend(iter(stderr.readline, "")), daemon=True
    ).start()
    assert process.stdout is not None
    exports: dict[str, str] = {}
    deadline = time.monotonic() + 300
    for line in iter(process.stdout.readline, ""):
        if line.startswith("API: "):
            running.url = line.split()[1]
        if m := re.match(r"\s+export (\w+)=(\S+)", line):
            exports[m[1]] = m[2]
        if "Ctrl-C" in line or time.monotonic() > deadline:
            break
    assert running.url, "".join(running.logs)[-3000:]
    running.env = {**os.environ, **exports}
    yield running
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
