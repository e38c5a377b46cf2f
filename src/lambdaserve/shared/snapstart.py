"""SnapStart: what an environment restored from a snapshot must redo. Everything made in the
init phase is shared by every environment restored from the same snapshot, random state
first of all, so it is reseeded after each restore (the runtime's `snapshot_restore_py`
hooks). The handlers also open no connection at init: clients are made on first use."""

from __future__ import annotations

import random
import sys


def reseed() -> None:
    """Fresh entropy for Python's and numpy's global generators (from os.urandom)."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def register_after_restore() -> bool:
    """Reseed after every restore, where the runtime offers the hook (Lambda's python3.12
    does, and so does the local stack's /var/runtime stand-in). Whether it was registered."""
    try:
        from snapshot_restore_py import register_after_restore as register
    except ImportError:
        return False
    register(reseed)
    return True
