"""Serve a model fitted on a pandas DataFrame without pandas: rewrite, at bundle time, what it
selects by column name into positions of the array lambdaserve feeds it, then prove the
rewritten model answers exactly as the original does on the sample. Dev-time only.

Most users fit a `ColumnTransformer` that picks columns by name. Lambda has no pandas (it would
cost ~70 MB and a slower cold start), and scikit-learn cannot select by name in an array. The
fitted column transformer keeps, per transformer, the input positions it read at fit time
(`_transformer_to_input_indices`); those become positions of the served array. Estimators that
read every column in order (a forest, an imputer pipeline) just need the served order to be
the DataFrame's, so the spec's features are put in that order. Anything the rewrite cannot
vouch for is refused by the proof, with the reason.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lambdaserve.manifest import Feature


class RewriteError(ValueError):
    """The model cannot be served from arrays with the same answers; the message says why."""


def fitted_names(estimator: Any) -> list[str] | None:
    """The DataFrame column names the model (or its first step) was fitted on, if any."""
    names = getattr(_first_step(estimator), "feature_names_in_", None)
    if names is None:
        names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _first_step(estimator: Any) -> Any:
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[0][1]
    return estimator


def _estimators(estimator: Any) -> Iterator[Any]:
    """The estimator and every fitted estimator nested in it."""
    yield estimator
    children: list[Any] = []
    if hasattr(estimator, "steps"):
        children = [step for _, step in estimator.steps]
    elif hasattr(estimator, "transformers_"):
        children = [t for _, t, _ in estimator.transformers_]
    elif hasattr(estimator, "transformer_list"):
        children = [t for _, t in estimator.transformer_list]
    for name in (
        "estimator_",
        "base_estimator_",
        "regressor_",
        "final_estimator_",
        "_preprocessor",
    ):
        if hasattr(estimator, name):
            children.append(getattr(estimator, name))
    nested = getattr(estimator, "estimators_", None)
    if isinstance(nested, list | tuple):
        children += list(nested)
    for child in children:
        if hasattr(child, "get_params"):  # an estimator, not "passthrough" or an array
            yield from _estimators(child)


def rewrite(estimator: Any, features: Sequence[Feature]) -> tuple[Any, list[Feature]]:
    """A copy of `estimator` that reads a plain array, and the features in the order it reads.

    The original is left untouched (the proof needs it)."""
    names = fitted_names(estimator)
    if names is None:
        return estimator, list(features)
    by_name = {f.name: f for f in features}
    model = copy.deepcopy(estimator)
    first = _first_step(model)
    if hasattr(first, "_transformer_to_input_indices"):
        used = sorted(
            {
                i
                for name, indices in first._transformer_to_input_indices.items()
                if first.named_transformers_.get(name, "drop") != "drop"
                for i in indices
            }
        )
        missing = [names[i] for i in used if names[i] not in by_name]
        if missing:
            raise RewriteError(f"the model reads columns the spec does not list: {missing}")
        order = list(features)
        position = {f.name: i for i, f in enumerate(order)}
        _to_positions(first, names, position)
    else:
        if sorted(names) != sorted(by_name):
            raise RewriteError(
                f"the model was fitted on the columns {names}; the spec lists "
                f"{sorted(by_name)}: they must be the same"
            )
        order = [by_name[n] for n in names]  # the array in the DataFrame's column order
        first.n_features_in_ = len(order)
    for inner in _estimators(model):
        if "feature_names_in_" in vars(inner):  # a Pipeline's is a property of its first step
            del inner.feature_names_in_
    return model, order


def _to_positions(transformer: Any, names: list[str], position: dict[str, int]) -> None:
    """Point a fitted ColumnTransformer's selections at positions of the served array."""
    mapped: dict[str, list[int]] = {}
    for name, indices in transformer._transformer_to_input_indices.items():
        mapped[name] = [position[names[i]] for i in indices if names[i] in position]
    rewritten = []
    for name, trans, columns in transformer.transformers_:
        if trans == "drop":
            rewritten.append((name, trans, columns))
        elif isinstance(columns, str) or np.isscalar(columns):
            rewritten.append((name, trans, mapped[name][0]))  # a scalar selects a 1-D column
        else:
            rewritten.append((name, trans, mapped[name]))
    transformer.transformers_ = rewritten
    transformer._transformer_to_input_indices = mapped
    if getattr(transformer, "_remainder", None) is not None:
        rest_name, rest, _ = transformer._remainder
        transformer._remainder = (rest_name, rest, mapped.get(rest_name, []))
    transformer.n_features_in_ = len(position)


def prove_equal(
    original: Any,
    rewritten: Any,
    rows: Sequence[dict[str, Any]],
    matrix: np.ndarray,
    order: Sequence[Feature],
) -> None:
    """Raise RewriteError unless the rewritten model, fed `matrix` as served, answers exactly
    as the original fed the same rows as a DataFrame (its fit-time input)."""
    import pandas as pd

    names = fitted_names(original) or [f.name for f in order]
    frame = pd.DataFrame([{n: row.get(n) for n in names} for row in rows], columns=names)
    frame = frame.astype({f.name: float for f in order if f.type in ("number", "integer")})
    methods = ["predict"] + [
        m for m in ("predict_proba", "decision_function") if hasattr(original, m)
    ]
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                want = np.asarray(getattr(original, method)(frame))
            except Exception as exc:  # the user's model may raise anything on its own data
                raise RewriteError(
                    f"the model cannot {method} the sample as a DataFrame: {exc}"
                ) from None
            try:
                got = np.asarray(getattr(rewritten, method)(matrix))
            except Exception as exc:
                raise RewriteError(
                    f"rewritten to read arrays, the model cannot {method}: {exc}"
                ) from None
        same = (
            np.array_equal(want, got)
            if method == "predict" and want.dtype.kind not in "fc"
            else want.shape == got.shape and np.allclose(want, got, rtol=0, atol=1e-12)
        )
        if not same:
            differ = int(np.sum(np.any((want != got).reshape(len(want), -1), axis=1)))
            raise RewriteError(
                f"rewritten to read arrays, the model's {method} differs on {differ} of "
                f"{len(want)} sample rows: refit it on arrays (a ColumnTransformer with "
                "column indices)"
            )
