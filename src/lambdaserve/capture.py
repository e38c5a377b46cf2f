"""Data capture: each prediction's inputs and outputs as a log line, for drift and quality
monitoring; off unless DATA_CAPTURE=true, and features marked `pii` in the manifest are
masked (Powertools data masking) before anything is written."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from aws_lambda_powertools import Logger

    from lambdaserve.manifest import Manifest


class DataCapture:
    """Writes one `data capture` log record per predict request."""

    def __init__(self, manifest: Manifest, logger: Logger) -> None:
        self.manifest = manifest
        self.logger = logger
        self.names = [f.name for f in manifest.features]
        self.pii_fields = [f"instances[*].'{f.name}'" for f in manifest.features if f.pii]
        self._masking: Any = None

    def _mask(self, data: dict[str, Any]) -> dict[str, Any]:
        if not self.pii_fields:
            return data
        if self._masking is None:
            from aws_lambda_powertools.utilities.data_masking import DataMasking

            self._masking = DataMasking()
        masked: dict[str, Any] = self._masking.erase(data, fields=self.pii_fields)
        return masked

    def record(self, matrix: np.ndarray, result: dict[str, Any]) -> None:
        """Log the validated inputs (feature order, missing as null) and the answer."""
        rows = [
            {
                name: (None if isinstance(v, float) and math.isnan(v) else v)
                for name, v in zip(self.names, row, strict=True)
            }
            for row in matrix.tolist()
        ]
        capture = self._mask({"instances": rows})
        capture["predictions"] = result["predictions"]
        if "probabilities" in result:
            capture["probabilities"] = result["probabilities"]
        capture["model"] = result["model"]
        self.logger.info("data capture", extra={"capture": capture})
