"""Load a bundle from MODEL_DIR only after proving it is the model it claims to be; predict."""

from __future__ import annotations

import hashlib
import os
import platform
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lambdaserve import manifest as manifest_io
from lambdaserve.manifest import FRAMEWORKS, Manifest, ManifestError
from lambdaserve.serving.engines import ONNX_FILE, OnnxModel, category_codes, onnxruntime_version
from lambdaserve.serving.golden import compare_golden
from lambdaserve.serving.schema import DEFAULT_MAX_ROWS, RequestParser

DEFAULT_MODEL_DIR = "/opt/model"
# scikit-learn classifiers whose predict() is, by construction, the class of the highest
# predict_proba() (ties aside): one model pass per request instead of two.
ARGMAX_CLASSIFIERS = frozenset(
    {
        "HistGradientBoostingClassifier",
        "GradientBoostingClassifier",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "LogisticRegression",
    }
)


class ModelLoadError(RuntimeError):
    """The bundle cannot be trusted or loaded; the service answers 503 instead of guessing."""


class ModelIntegrityError(ModelLoadError):
    """The model file is not the one the manifest (or the function version) names."""


class FrameworkMismatchError(ModelLoadError):
    """The bundle was made with other library versions than this runtime has."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def runtime_versions() -> dict[str, str]:
    """The versions of the frameworks this process would unpickle a model with."""
    import joblib
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def framework_mismatches(recorded: Mapping[str, str], runtime: Mapping[str, str]) -> list[str]:
    """Differences that make unpickling unsafe: any library version, Python's minor version."""
    problems = []
    for name in FRAMEWORKS:
        want, have = recorded.get(name), runtime.get(name)
        if name == "python" and want and have:
            want, have = ".".join(want.split(".")[:2]), ".".join(have.split(".")[:2])
        if want != have:
            problems.append(f"{name} {recorded.get(name)} in the bundle, {runtime.get(name)} here")
    return problems


def _single_threaded(estimator: Any) -> None:
    """n_jobs=1 wherever the model has it: a Lambda has one or two vCPUs, and spawning joblib
    workers per request costs more than it saves. Predictions are unchanged."""
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return
    names = [
        k for k, v in get_params(deep=True).items() if k.endswith("n_jobs") and v not in (None, 1)
    ]
    if names:
        estimator.set_params(**dict.fromkeys(names, 1))


@dataclass(frozen=True)
class ExpectedModel:
    """What the function version pins (MODEL_* variables); empty values pin nothing."""

    name: str = ""
    version: str = ""
    sha256: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ExpectedModel:
        """Read MODEL_NAME, MODEL_VERSION and MODEL_SHA256."""
        return cls(
            name=env.get("MODEL_NAME", ""),
            version=env.get("MODEL_VERSION", ""),
            sha256=env.get("MODEL_SHA256", "").lower(),
        )

    @classmethod
    def of(cls, manifest: Manifest) -> ExpectedModel:
        """What a deploy pins for this manifest."""
        return cls(manifest.name, manifest.version or "", manifest.sha256)

    def env(self) -> dict[str, str]:
        """The MODEL_* variables that pin it (what from_env reads back)."""
        return {"MODEL_NAME": self.name, "MODEL_VERSION": self.version, "MODEL_SHA256": self.sha256}

    def mismatches(self, manifest: Manifest) -> list[str]:
        """Where the manifest is not the model this function version was deployed with."""
        pairs = [
            ("MODEL_NAME", self.name, manifest.name),
            ("MODEL_VERSION", self.version, manifest.version or ""),
            ("MODEL_SHA256", self.sha256, manifest.sha256),
        ]
        return [
            f"{var}={want} but the bundle has {have!r}"
            for var, want, have in pairs
            if want and want != have
        ]


def _load_onnx(model_dir: Path, manifest: Manifest) -> OnnxModel:
    """The ONNX graph, once its hash is the manifest's and this runtime is the one the parity
    proof ran on (another onnxruntime could answer otherwise)."""
    onnx = manifest.onnx or {}
    path = model_dir / str(onnx.get("file", ONNX_FILE))
    if not path.is_file():
        raise ModelLoadError(f"the bundle has no ONNX graph {path.name!r}")
    actual = sha256_of(path)
    if actual != onnx.get("sha256"):
        raise ModelIntegrityError(
            f"{path.name} has sha256 {actual}, the manifest says {onnx.get('sha256')}"
        )
    try:
        here = onnxruntime_version()
    except ImportError:
        raise FrameworkMismatchError(
            "the bundle serves with ONNX Runtime and this runtime has none: attach the ONNX "
            "runtime layer (deploy does)"
        ) from None
    proven = onnx.get("frameworks", {}).get("onnxruntime")
    if proven != here:
        raise FrameworkMismatchError(
            f"the parity proof ran on onnxruntime {proven}, this runtime has {here}"
        )
    probabilities = bool(onnx.get("probabilities", True))
    return OnnxModel.load(path, manifest.task, manifest.classes, probabilities)


def load_pickled(path: Path) -> Any:
    """`joblib.load`, with a model pickled by another scikit-learn version refused (its
    predictions here could silently differ): FrameworkMismatchError. The one place
    lambdaserve unpickles; callers check what they must (hash, pins) before calling it."""
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(path)
        except InconsistentVersionWarning as exc:
            raise FrameworkMismatchError(str(exc)) from None


class Predictor:
    """A verified, loaded model with its request parser."""

    def __init__(
        self, manifest: Manifest, estimator: Any, max_rows: int = DEFAULT_MAX_ROWS
    ) -> None:
        self.manifest = manifest
        self.estimator = estimator
        self.parser = RequestParser(manifest.features, max_rows=max_rows)
        self.load_seconds = 0.0
        final = getattr(estimator, "_final_estimator", estimator)
        self._labels_from_proba = (
            manifest.task == "classification"
            and type(final).__name__ in ARGMAX_CLASSIFIERS
            and type(final).__module__.startswith("sklearn.")
            and hasattr(estimator, "classes_")
        )

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        expected: ExpectedModel | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> Predictor:
        """Check manifest, pins, hash and frameworks, then `joblib.load` — in that order."""
        started = time.perf_counter()
        model_dir = Path(model_dir)
        try:
            manifest = manifest_io.read(model_dir)
        except ManifestError as exc:
            raise ModelLoadError(f"cannot read the bundle in {model_dir}: {exc}") from None
        pinned = (expected or ExpectedModel()).mismatches(manifest)
        if pinned:
            raise ModelIntegrityError("wrong model for this function version: " + "; ".join(pinned))
        model_path = model_dir / manifest.model_file
        if not model_path.is_file():
            raise ModelLoadError(f"the bundle has no model file {manifest.model_file!r}")
        actual = sha256_of(model_path)
        if actual != manifest.sha256:
            raise ModelIntegrityError(
                f"{manifest.model_file} has sha256 {actual}, the manifest says {manifest.sha256}: "
                "refusing to unpickle a file that is not the one bundled"
            )
        if manifest.engine == "onnx":
            estimator: Any = _load_onnx(model_dir, manifest)
        else:
            mismatched = framework_mismatches(manifest.frameworks, runtime_versions())
            if mismatched:
                raise FrameworkMismatchError(
                    "the bundle was made for other framework versions: " + "; ".join(mismatched)
                )
            estimator = load_pickled(model_path)
            _single_threaded(estimator)
        predictor = cls(manifest, estimator, max_rows=max_rows)
        predictor.load_seconds = time.perf_counter() - started
        return predictor

    def parse(self, body: Any) -> np.ndarray:
        """Validate a request body into the model's input matrix."""
        return self.parser.parse(body)

    def predict(self, matrix: np.ndarray) -> dict[str, Any]:
        """Predict a validated batch; classifiers also answer class probabilities."""
        return self.answer(*self.predict_arrays(matrix))

    def answer(self, labels: np.ndarray, probabilities: np.ndarray | None) -> dict[str, Any]:
        """/predict's answer for a batch's predictions and (classifiers) probabilities."""
        out: dict[str, Any] = {"predictions": labels.tolist()}
        if probabilities is not None:
            out["probabilities"] = probabilities.tolist()
        out["model"] = {"name": self.manifest.name, "version": self.manifest.version}
        return out

    def predict_arrays(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The predictions and (classifiers) the probabilities as arrays, for batch scoring."""
        if self.manifest.category_input == "codes":
            matrix = category_codes(matrix, self.manifest.features)
        if isinstance(self.estimator, OnnxModel):
            return self.estimator.predict_arrays(matrix)
        from sklearn import config_context

        # Our parser has already refused NaN/Infinity where the spec forbids them, so
        # scikit-learn's own finiteness scan of every batch is work done twice.
        with config_context(assume_finite=True, skip_parameter_validation=True):
            if self._labels_from_proba:
                probabilities = self.estimator.predict_proba(matrix)
                return self._argmax_labels(matrix, probabilities), probabilities
            labels = np.asarray(self.estimator.predict(matrix))
            if self.manifest.task == "classification" and hasattr(self.estimator, "predict_proba"):
                return labels, np.asarray(self.estimator.predict_proba(matrix))
            return labels, None

    def _argmax_labels(self, matrix: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """predict() without running the model twice: for these estimators it is the class
        of the highest probability. Rows with a tie ask predict() itself."""
        best = probabilities.argmax(axis=1)
        labels = np.asarray(self.estimator.classes_)[best]
        top = probabilities[np.arange(len(best)), best]
        tied = (probabilities == top[:, None]).sum(axis=1) > 1
        if tied.any():
            labels[tied] = self.estimator.predict(matrix[tied])
        return labels

    def golden_mismatches(self) -> list[str]:
        """Golden examples whose output today differs from the bundled one (should be none)."""
        if not self.manifest.golden_examples:
            return []
        rows = [g.inputs for g in self.manifest.golden_examples]
        return compare_golden(self.manifest, self.predict(self.parse({"instances": rows})))
