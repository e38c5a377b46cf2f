"""The bundle manifest: what a model is, what it expects and what it answered when bundled."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
REGISTRY_PREFIX = "models"  # s3://<registry>/models/<name>/<version>/manifest.json
MODEL_FILE = "model.joblib"

FeatureType = Literal["number", "integer", "boolean", "category"]
Task = Literal["classification", "regression", "clustering", "outlier_detection"]
FEATURE_TYPES: tuple[FeatureType, ...] = ("number", "integer", "boolean", "category")
TASKS: tuple[Task, ...] = ("classification", "regression", "clustering", "outlier_detection")
# The framework versions a bundle records and the serving side checks before loading.
FRAMEWORKS = ("python", "scikit-learn", "numpy", "scipy", "joblib")
ENGINES = ("sklearn", "onnx")  # engines.py: what serves a bundle
CATEGORY_INPUTS = ("raw", "codes")  # category strings, or their index in the category list


class ManifestError(ValueError):
    """A manifest or feature spec that is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Feature:
    """One input column, in the order the model expects it."""

    name: str
    type: FeatureType
    required: bool = True
    categories: tuple[str, ...] | None = None
    allow_unknown: bool = False
    minimum: float | None = None
    maximum: float | None = None
    pii: bool = False
    description: str | None = None

    @classmethod
    def from_dict(cls, raw: Any, where: str = "feature") -> Feature:
        """Build a feature from its JSON/YAML form, refusing anything ambiguous."""
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: expected an object, got {type(raw).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ManifestError(f"{where}: unknown keys {unknown}")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise ManifestError(f"{where}: 'name' must be a non-empty string")
        ftype = raw.get("type")
        if ftype not in FEATURE_TYPES:
            raise ManifestError(f"{where} {name!r}: 'type' must be one of {list(FEATURE_TYPES)}")
        categories = raw.get("categories")
        if ftype == "category":
            if not isinstance(categories, list) or not categories:
                raise ManifestError(f"{where} {name!r}: a category needs a non-empty 'categories'")
            if not all(isinstance(c, str) for c in categories) or len(set(categories)) != len(
                categories
            ):
                raise ManifestError(f"{where} {name!r}: 'categories' must be distinct strings")
            categories = tuple(categories)
        elif categories is not None:
            raise ManifestError(f"{where} {name!r}: only a category feature has 'categories'")
        bounds = {k: raw.get(k) for k in ("minimum", "maximum")}
        for key, value in bounds.items():
            if value is None:
                continue
            if ftype not in ("number", "integer"):
                raise ManifestError(f"{where} {name!r}: only numeric features have '{key}'")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ManifestError(f"{where} {name!r}: '{key}' must be a number")
            if not math.isfinite(value):
                raise ManifestError(f"{where} {name!r}: '{key}' must be finite")
        lo, hi = bounds["minimum"], bounds["maximum"]
        if lo is not None and hi is not None and lo > hi:
            raise ManifestError(f"{where} {name!r}: minimum {lo} is above maximum {hi}")
        for flag in ("required", "allow_unknown", "pii"):
            if flag in raw and not isinstance(raw[flag], bool):
                raise ManifestError(f"{where} {name!r}: '{flag}' must be true or false")
        return cls(
            name=name,
            type=ftype,
            required=raw.get("required", True),
            categories=categories,
            allow_unknown=raw.get("allow_unknown", False),
            minimum=lo,
            maximum=hi,
            pii=raw.get("pii", False),
            description=raw.get("description"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, without keys left at their defaults of None."""
        out = asdict(self)
        if self.categories is not None:
            out["categories"] = list(self.categories)
        return {k: v for k, v in out.items() if v is not None}


def parse_features(raw: Any) -> tuple[Feature, ...]:
    """Parse an ordered feature list; names must be unique."""
    if not isinstance(raw, list) or not raw:
        raise ManifestError("'features' must be a non-empty list")
    features = tuple(Feature.from_dict(item, f"features[{i}]") for i, item in enumerate(raw))
    names = [f.name for f in features]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ManifestError(f"duplicate feature names: {duplicated}")
    return features


@dataclass(frozen=True)
class GoldenExample:
    """An input and the exact output the model gave for it when bundled."""

    inputs: dict[str, Any]
    prediction: Any
    probabilities: list[float] | None = None


@dataclass(frozen=True)
class Manifest:
    """Everything the serving side needs to trust, validate and describe a model."""

    name: str
    sha256: str
    frameworks: dict[str, str]
    estimator: str
    task: Task
    features: tuple[Feature, ...]
    classes: list[Any] | None = None
    version: str | None = None
    golden_examples: list[GoldenExample] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_profile: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    created_by: str | None = None
    model_file: str = MODEL_FILE
    # The engine that serves (engines.py), how categories reach the model ("raw" strings or
    # "codes"), the ONNX graph's file, hash and versions, and the parity proof's figures.
    engine: str = "sklearn"
    category_input: str = "raw"
    onnx: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    # What the loaded model takes (bundle measures it): {"model_bytes", "memory_size_mb"}, the
    # function MemorySize it needs. None in bundles made before it was measured.
    memory: dict[str, int] | None = None
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, raw: Any) -> Manifest:
        """Validate and build a manifest from its JSON form."""
        if not isinstance(raw, dict):
            raise ManifestError("manifest must be a JSON object")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ManifestError(
                f"unsupported manifest schema_version {raw.get('schema_version')!r}; "
                f"this lambdaserve reads {SCHEMA_VERSION}"
            )
        for key in ("name", "sha256", "estimator", "task", "frameworks", "features"):
            if key not in raw:
                raise ManifestError(f"manifest is missing {key!r}")
        if not isinstance(raw["name"], str) or not raw["name"]:
            raise ManifestError("'name' must be a non-empty string")
        sha = raw["sha256"]
        if not (
            isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
        ):
            raise ManifestError("'sha256' must be 64 lowercase hex digits")
        if raw["task"] not in TASKS:
            raise ManifestError(f"'task' must be one of {list(TASKS)}")
        frameworks = raw["frameworks"]
        if not isinstance(frameworks, dict) or any(k not in frameworks for k in FRAMEWORKS):
            raise ManifestError(f"'frameworks' must give versions of {list(FRAMEWORKS)}")
        classes = raw.get("classes")
        if raw["task"] == "classification" and not (isinstance(classes, list) and classes):
            raise ManifestError("a classification manifest needs its 'classes'")
        version = raw.get("version")
        if version is not None and not isinstance(version, str):
            raise ManifestError("'version' must be a string or null")
        golden = raw.get("golden_examples", [])
        if not isinstance(golden, list):
            raise ManifestError("'golden_examples' must be a list")
        try:
            examples = [GoldenExample(**g) for g in golden]
        except TypeError as exc:
            raise ManifestError(f"malformed golden example: {exc}") from None
        return cls(
            name=raw["name"],
            sha256=sha,
            frameworks={k: str(v) for k, v in frameworks.items()},
            estimator=str(raw["estimator"]),
            task=cast(Task, raw["task"]),
            features=parse_features(raw["features"]),
            classes=classes,
            version=version,
            golden_examples=examples,
            metrics=dict(raw.get("metrics", {})),
            baseline_profile=dict(raw.get("baseline_profile", {})),
            created_at=raw.get("created_at"),
            created_by=raw.get("created_by"),
            model_file=str(raw.get("model_file", MODEL_FILE)),
            memory=_memory_field(raw.get("memory")),
            **_engine_fields(raw),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, keys in a stable order."""
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "version": self.version,
            "model_file": self.model_file,
            "sha256": self.sha256,
            "frameworks": dict(self.frameworks),
            "estimator": self.estimator,
            "task": self.task,
            "classes": self.classes,
            "features": [f.to_dict() for f in self.features],
            "golden_examples": [asdict(g) for g in self.golden_examples],
            "metrics": dict(self.metrics),
            "baseline_profile": self.baseline_profile,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "engine": self.engine,
            "category_input": self.category_input,
            "onnx": self.onnx,
            "parity": self.parity,
        } | ({"memory": dict(self.memory)} if self.memory is not None else {})

    @property
    def has_probabilities(self) -> bool:
        """Whether answers carry class probabilities: a classifier whose golden examples,
        made by the model itself when bundled, have them (an SVC without predict_proba not)."""
        return (
            self.task == "classification"
            and bool(self.golden_examples)
            and all(g.probabilities is not None for g in self.golden_examples)
        )

    def public(self) -> dict[str, Any]:
        """What `GET /model` shows: no golden inputs (they may hold real customer rows)."""
        out = self.to_dict()
        del out["golden_examples"]
        del out["baseline_profile"]
        return out


def _memory_field(raw: Any) -> dict[str, int] | None:
    """The measured memory of the loaded model, validated (None: not measured)."""
    if raw is None:
        return None
    keys = {"model_bytes", "memory_size_mb"}
    if (
        not isinstance(raw, dict)
        or set(raw) != keys
        or not all(type(v) is int and v >= 0 for v in raw.values())
    ):
        raise ManifestError(f"'memory' must give {sorted(keys)} as non-negative integers")
    return dict(raw)


def _engine_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The engine a manifest serves with, how categories reach its model, the ONNX graph's
    record and the parity proof's figures, validated."""
    engine, onnx = raw.get("engine", "sklearn"), raw.get("onnx")
    if engine not in ENGINES:
        raise ManifestError(f"'engine' must be one of {list(ENGINES)}")
    if engine == "onnx" and not (isinstance(onnx, dict) and {"file", "sha256"} <= set(onnx)):
        raise ManifestError("an ONNX manifest needs 'onnx' with its 'file' and 'sha256'")
    category_input = raw.get("category_input", "raw")
    if category_input not in CATEGORY_INPUTS:
        raise ManifestError(f"'category_input' must be one of {list(CATEGORY_INPUTS)}")
    return {
        "engine": engine,
        "category_input": category_input,
        "onnx": onnx,
        "parity": raw.get("parity"),
    }


def read(bundle_dir: Path) -> Manifest:
    """Read and validate `manifest.json` from a bundle folder."""
    path = Path(bundle_dir) / MANIFEST_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no {MANIFEST_FILE} in {bundle_dir}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None
    return Manifest.from_dict(raw)


def to_bytes(manifest: Manifest) -> bytes:
    """The one serialisation of a manifest: strict JSON (no NaN), what is signed, written
    into bundles and layers, and stored in the registry."""
    return (json.dumps(manifest.to_dict(), indent=2, allow_nan=False) + "\n").encode()


def write(manifest: Manifest, bundle_dir: Path) -> Path:
    """Write `manifest.json` into a bundle folder."""
    path = Path(bundle_dir) / MANIFEST_FILE
    path.write_bytes(to_bytes(manifest))
    return path
