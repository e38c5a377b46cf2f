"""Python's cyclic garbage collector in a Lambda environment. What init makes (the modules,
Powertools, the model) lives as long as the environment, yet every full collection walks all of
it: about 100,000 objects in the predict function, a pause of tens of milliseconds (up to about
0.1 s on this machine) in the middle of some request, once every hundred or so requests of
1,000 rows. `gc.freeze()` after init moves those objects out of every collection's way; what
requests make is collected as before. Imports nothing but the standard library."""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping


def freeze_init(env: Mapping[str, str] = os.environ) -> bool:
    """Freeze what init made, in a Lambda environment (Lambda sets AWS_EXECUTION_ENV, and so
    does the local stack); True if frozen. A test that imports a handler into its own process
    keeps its collector as it was."""
    if not env.get("AWS_EXECUTION_ENV", "").startswith("AWS_Lambda_"):
        return False
    gc.freeze()
    return True
