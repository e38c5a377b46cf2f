from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdaserve import manifest
from lambdaserve.manifest import Feature, Manifest, ManifestError


def test_sample_manifest_round_trips_through_json(sample_bundle: Path) -> None:
    original = manifest.read(sample_bundle)
    manifest.write(original, sample_bundle)
    again = manifest.read(sample_bundle)
    assert again == original
    assert again.to_dict() == json.loads((sample_bundle / "manifest.json").read_text())


def test_sample_manifest_holds_the_contract(sample_bundle: Path) -> None:
    m = manifest.read(sample_bundle)
    assert m.schema_version == manifest.SCHEMA_VERSION
    assert m.task == "classification"
    assert m.classes == [0, 1]
    assert [f.name for f in m.features][:2] == ["recency_days", "frequency_90d"]
    assert set(manifest.FRAMEWORKS) <= set(m.frameworks)
    assert len(m.golden_examples) == 5
    assert all(len(g.probabilities or []) == 2 for g in m.golden_examples)
    assert {"roc_auc", "log_loss", "accuracy"} <= set(m.metrics)
    assert set(m.baseline_profile["features"]) == {f.name for f in m.features}
    assert m.created_at
    assert m.created_by


def test_public_view_hides_golden_inputs_and_profile(sample_bundle: Path) -> None:
    public = manifest.read(sample_bundle).public()
    assert "golden_examples" not in public
    assert "baseline_profile" not in public
    assert public["features"][0]["name"] == "recency_days"


def _valid(sample_bundle: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((sample_bundle / "manifest.json").read_text())
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(schema_version=99), "schema_version"),
        (lambda m: m.pop("sha256"), "missing 'sha256'"),
        (lambda m: m.update(sha256="XYZ"), "64 lowercase hex"),
        (lambda m: m.update(task="ranking"), "'task'"),
        (lambda m: m.update(classes=None), "needs its 'classes'"),
        (lambda m: m["frameworks"].pop("numpy"), "'frameworks'"),
        (lambda m: m.update(version=3), "'version'"),
        (lambda m: m.update(features=[]), "non-empty list"),
        (lambda m: m["features"].append(dict(m["features"][0])), "duplicate feature names"),
        (lambda m: m["features"][0].update(type="float"), "'type' must be one of"),
        (lambda m: m["features"][0].update(minimum=10, maximum=1), "above maximum"),
        (lambda m: m["features"][0].update(colour="red"), "unknown keys"),
        (lambda m: m["features"][6].pop("categories"), "needs a non-empty 'categories'"),
        (lambda m: m["features"][6].update(categories=["a", "a"]), "distinct strings"),
        (lambda m: m["features"][6].update(minimum=0), "only numeric features"),
        (lambda m: m["features"][0].update(required="yes"), "true or false"),
        (lambda m: m.update(golden_examples=[{"input": {}}]), "malformed golden example"),
    ],
)
def test_invalid_manifests_are_refused_with_the_reason(
    sample_bundle: Path, change: Any, message: str
) -> None:
    raw = _valid(sample_bundle)
    change(raw)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_dict(raw)


def test_reading_a_folder_without_manifest_says_so(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest\.json"):
        manifest.read(tmp_path)


def test_reading_broken_json_says_so(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        manifest.read(tmp_path)


def test_feature_to_dict_omits_unset_optional_keys() -> None:
    feature = Feature.from_dict({"name": "x", "type": "number"})
    assert feature.to_dict() == {
        "name": "x",
        "type": "number",
        "required": True,
        "allow_unknown": False,
        "pii": False,
    }
