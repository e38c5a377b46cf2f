"""Paths and event files the tests share (imported, unlike conftest, which pytest owns)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    """An API Gateway event from events/, as `sam local invoke -e` would send it."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event
