"""What the local stack's resources are called, and how `lambdaserve local up` sets it up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lambdaserve.release.live_parameters import stack_prefix

BUCKET = "lambdaserve-local-registry"
FUNCTION = "lambdaserve-local-PredictFunction"
BATCH_FUNCTION = "lambdaserve-local-BatchFunction"
BATCH_BUCKET = "lambdaserve-local-batch"
STATE_MACHINE = "lambdaserve-local-BatchScoring"
MONITOR_FUNCTION = "lambdaserve-local-MonitorFunction"
MONITORING_BUCKET = "lambdaserve-local-monitoring"
PREDICT_LOG_GROUP = f"/aws/lambda/{FUNCTION}"
SSM_PREFIX = stack_prefix("lambdaserve-local")
REGION = "us-east-1"
# moto's placeholder credentials: the local endpoint accepts any and holds nothing real.
MOTO_KEY = "testing"
CREDENTIALS = {"aws_access_key_id": MOTO_KEY, "aws_secret_access_key": MOTO_KEY}


@dataclass
class StackSettings:
    """Where the stack listens and what it serves."""

    build_dir: Path
    state_dir: Path
    port: int = 3000
    aws_port: int = 4566
    bundle: Path | None = None
    function_id: str = "PredictFunction"
    seed: int | None = None
    auth_mode: str | None = None  # None: the template's AuthMode
    api_key: str | None = None  # None: a new random key (AuthMode API_KEY)
    parameters: dict[str, str] = field(default_factory=dict)  # template parameter overrides
    max_environments: int = 8  # per function, where no reserved concurrency is lower

    def __post_init__(self) -> None:
        # Workers run in folders of their own: a relative build dir (`make up`'s default)
        # made the ONNX runtime layer unreachable from them.
        self.build_dir = Path(self.build_dir).resolve()
        self.state_dir = Path(self.state_dir).resolve()

    def concurrency_limit(self, function: str, parameters: dict[str, str]) -> int:
        """As Lambda: the predict function's ReservedConcurrency (-1: none), under a local cap
        of execution environments per function (this machine is not Lambda's fleet)."""
        reserved = int(parameters.get("ReservedConcurrency", "-1"))
        cap = self.max_environments
        return min(reserved, cap) if function == FUNCTION and reserved >= 0 else cap


def stack_record(state_dir: Path) -> Path:
    """Where a running local stack keeps what CloudFormation would remember of it."""
    return Path(state_dir) / "stack.json"
