"""Where a benchmark writes its results: outside the tree (LAMBDASERVE_BENCH_OUT, else
~/.cache/lambdaserve/bench), each file stamped with the date and the machine it was measured on.
`make bench-publish` copies the newest into docs/performance/, which the docs' performance page
shows; nothing a bench run writes dirties `git status`."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any


def results_dir() -> Path:
    """The folder bench results go to (made if missing)."""
    default = Path.home() / ".cache" / "lambdaserve" / "bench"
    folder = Path(os.environ.get("LAMBDASERVE_BENCH_OUT") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def machine() -> str:
    """This machine in one line: cores, memory, processor, Python."""
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024**2:.0f} GiB"
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores{memory}, {cpu}, Python {platform.python_version()}"


def stamp() -> dict[str, str]:
    """When and where: the fields every results file starts with."""
    return {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def previous(name: str) -> dict[str, Any]:
    """The last results of this name (a bench that runs in parts adds to them)."""
    path = results_dir() / f"{name}.json"
    found: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return found


def write(
    name: str, figures: dict[str, Any], markdown: str | None = None, folder: Path | None = None
) -> Path:
    """<name>.json (stamped) and <name>.md (with a line saying when and where) in the
    results folder (or `folder`); returns the JSON's path."""
    folder = folder or results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamped = {
        **stamp(),
        **{k: v for k, v in figures.items() if k not in ("measured_at", "machine")},
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(stamped, indent=2) + "\n")
    if markdown is not None:
        said = f"_Measured {stamped['measured_at'][:10]} on {stamped['machine']}._\n\n"
        title, _, body = (
            markdown.partition("\n") if markdown.startswith("#") else ("", "", markdown)
        )
        (folder / f"{name}.md").write_text(
            f"{title}\n\n{said}{body.lstrip()}" if title else said + body
        )
    print(f"wrote {path}", flush=True)
    return path
