"""The engines a bundle can serve with, behind one interface: scikit-learn (the pickled
estimator) and ONNX Runtime (the graph skl2onnx made at bundle time, served only after the
parity proof in convert.py). Shipped in the serving layer; imports neither scikit-learn nor
onnxruntime until a model of that engine loads.

Both engines take the served matrix as the model was fitted on it: categories as strings
(`category_input` "raw"), or as their index in the feature's category list ("codes": ONNX
tensors hold one type, so a model for the ONNX engine reads numbers only).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lambdaserve.manifest import Feature

ONNX_FILE = "model.onnx"
ONNX_INPUT = "X"  # one float tensor, (rows, features)


def category_codes(matrix: np.ndarray, features: Sequence[Feature]) -> np.ndarray:
    """The served matrix as numbers: a category is its index in the feature's category list
    (NaN when missing), every other value as is. What a model fitted for `--category-codes`
    reads; use it to fit one: `pipeline.fit(category_codes(matrix, features), y)`."""
    out = np.empty(matrix.shape, dtype=np.float64)
    for column, feature in enumerate(features):
        values = matrix[:, column]
        if feature.type == "category":  # one vectorised comparison per category
            codes = np.full(len(values), np.nan)
            for code, category in enumerate(feature.categories or ()):
                codes[values == category] = code
            out[:, column] = codes
        else:
            out[:, column] = np.asarray(values, dtype=np.float64)
    return out


def onnxruntime_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


class OnnxModel:
    """An ONNX graph in an onnxruntime session, answering as the scikit-learn estimator it was
    converted from: labels (and, for classifiers, probabilities in `classes` order)."""

    def __init__(
        self, session: Any, task: str, classes: list[Any] | None, probabilities: bool = True
    ) -> None:
        self.session, self.task, self.classes = session, task, classes
        self.probabilities = probabilities and task == "classification"

    @classmethod
    def load(
        cls, path: Path, task: str, classes: list[Any] | None, probabilities: bool = True
    ) -> OnnxModel:
        """A session on the graph, with the threads the function's memory buys (threads.py
        set OMP_NUM_THREADS) and no spinning between requests."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            path.read_bytes(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return cls(session, task, classes, probabilities)

    def predict_arrays(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (values, clusters, outlier flags), and probabilities for a classifier that
        has them (float64, as scikit-learn answers; an SVC's scores are not probabilities)."""
        features = np.ascontiguousarray(matrix, dtype=np.float32)
        found = self.session.run(None, {ONNX_INPUT: features})
        if self.task == "regression":
            return np.asarray(found[0], dtype=np.float64).ravel(), None
        labels = np.asarray(found[0]).ravel()
        if self.classes and labels.dtype.kind in "iu" and isinstance(self.classes[0], str):
            labels = np.asarray(self.classes, dtype=object)[labels]
        if self.probabilities and len(found) >= 2:
            return labels, np.asarray(found[1], dtype=np.float64)
        return labels, None
