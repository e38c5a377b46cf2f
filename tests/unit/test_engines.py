"""Category codes: what a model for the ONNX engine reads in place of category strings."""

from __future__ import annotations

import numpy as np

from lambdaserve.manifest import Feature
from lambdaserve.serving.engines import category_codes


def test_a_category_is_its_index_and_missing_or_unknown_is_nan() -> None:
    features = [
        Feature("plan", "category", required=False, categories=("basic", "pro", "team"),
                allow_unknown=True),
        Feature("spend", "number", required=False),
    ]  # fmt: skip
    served = np.array(
        [["basic", 1.5], [None, 2.0], [float("nan"), 3.0], ["team", 4.0], ["gold", 5.0],
         ["pro", float("nan")]],
        dtype=object,
    )  # fmt: skip
    codes = category_codes(served, features)
    assert codes.dtype == np.float64
    np.testing.assert_array_equal(codes[:, 0], [0, np.nan, np.nan, 2, np.nan, 1])
    np.testing.assert_array_equal(codes[:, 1], [1.5, 2, 3, 4, 5, np.nan])
