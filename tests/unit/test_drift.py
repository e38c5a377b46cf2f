"""Drift against the bundle's baseline: no false alarm on the training distribution, exactly
the shifted features on a Black-Friday mix, and no verdict where none is possible."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lambdaserve.bundle import sample
from lambdaserve.monitor import drift
from lambdaserve.monitor.report import LABEL_FONT, plot, render
from lambdaserve.monitor.window import MonitorError, add_record, parse_window
from lambdaserve.serving.capture import DataCapture, capture_records
from lambdaserve.serving.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(sample_bundle_session: Path) -> Predictor:
    return Predictor.load(sample_bundle_session, max_rows=50_000)


def captured(predictor: Predictor, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The capture records the predict handler would write for these requests."""
    matrix = predictor.parse({"instances": records})
    return list(DataCapture(predictor.manifest, 1.0).records(matrix, predictor.predict(matrix)))


def window_of(predictor: Predictor, records: list[dict[str, Any]]) -> drift.Window:
    window = drift.Window([f.name for f in predictor.manifest.features])
    for record in captured(predictor, records):
        add_record(window, json.loads(json.dumps(record)))  # as read back from S3
    return window


def verdict(predictor: Predictor, rows: int, seed: int, mix: str = "training") -> dict[str, Any]:
    records, _ = sample.generate(rows, seed, mix)
    return drift.compare(predictor.manifest.baseline_profile, window_of(predictor, records))


def flagged(result: dict[str, Any]) -> set[str]:
    return {f["name"] for f in result["features"] if f["status"] == "drift"}


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_traffic_from_the_training_distribution_raises_no_drift(
    predictor: Predictor, seed: int
) -> None:
    result = verdict(predictor, 2000, seed)
    assert result["status"] == "ok"
    assert flagged(result) == set()
    assert all(f["status"] == "ok" for f in result["features"])
    assert result["prediction"]["status"] == "ok"


def test_black_friday_flags_exactly_the_shifted_features_and_the_prediction(
    predictor: Predictor,
) -> None:
    result = verdict(predictor, 2000, 104, "black-friday")
    assert result["status"] == "drift"
    assert flagged(result) == {"discount_pct", "device"}
    assert result["drifted_features"] == 2
    assert result["prediction"]["status"] == "drift"
    discount = next(f for f in result["features"] if f["name"] == "discount_pct")
    assert discount["out_of_range_rate"] > 0.4  # 40% and 50% offers: above the baseline's 30
    assert discount["missing_rate"] < discount["baseline_missing_rate"] - 0.3


def test_a_missing_rate_moves_only_beyond_sampling_noise() -> None:
    """A 40% missing rate seen over a canary's few hundred rows wanders by 5 points about one
    window in 30 by chance: that is noise, not drift. At monitoring's thousands of rows the
    5-point rule governs, and a real move is flagged at any size."""
    t = drift.Thresholds()
    rng = np.random.default_rng(7)
    chance = [rng.binomial(440, 0.4) / 440 for _ in range(2000)]
    five_points = sum(abs(rate - 0.4) >= 0.05 for rate in chance)
    assert five_points > 2000 / 60  # what the bare 5-point rule would have flagged
    assert sum(drift.missing_moved(0.4, rate, 440, t) for rate in chance) <= 2000 / 200
    assert drift.missing_moved(0.4, 0.34, 5000, t)  # 6 points at 5,000 rows: 8.7 SE
    assert not drift.missing_moved(0.4, 0.34, 440, t)  # 6 points at 440 rows: 2.6 SE
    assert drift.missing_moved(0.4, 0.05, 440, t)  # the Black-Friday move: 15 SE
    assert not drift.missing_moved(0.0, 0.02, 200, t)  # a rate that was 0: the 5-point rule


def test_a_small_window_is_insufficient_data_never_drift(predictor: Predictor) -> None:
    result = verdict(predictor, 8, 105, "black-friday")
    assert (result["status"], result["rows"], result["features"]) == ("insufficient_data", 8, [])


def test_a_bundle_without_a_drift_baseline_says_so(predictor: Predictor) -> None:
    records, _ = sample.generate(600, 106)
    old = {"rows": 10, "features": {}}  # what bundles made before the drift baseline hold
    assert drift.compare(old, window_of(predictor, records))["status"] == "no_baseline"


def test_psi_and_js_behave_as_measures() -> None:
    counts = np.array([100, 200, 300, 400])
    assert drift.psi(counts, counts) == pytest.approx(0.0)
    assert drift.psi(counts, counts[::-1]) > 0.25
    assert drift.js_distance({"a": 5, "b": 5}, {"a": 5, "b": 5}) == pytest.approx(0.0)
    far = drift.js_distance({"a": 1000}, {"b": 1000})
    assert 0.95 < far <= 1.0


def test_thresholds_come_from_the_environment() -> None:
    t = drift.Thresholds.from_env({"DRIFT_PSI": "0.3", "DRIFT_MIN_ROWS": "50", "DRIFT_JS": ""})
    assert (t.psi_drift, t.min_rows, t.js_drift) == (0.3, 50, 0.2)
    assert t.status("psi", 0.31) == "drift"
    assert t.status("psi", 0.12) == "warn"
    assert t.status("js", 0.05) == "ok"


def test_capture_objects_are_read_in_both_shapes_firehose_writes(predictor: Predictor) -> None:
    records, _ = sample.generate(450, 107)
    written = captured(predictor, records)  # 3 records of at most 200 rows
    assert [len(r["rows"]) for r in written] == [200, 200, 50]
    lines = [json.dumps(r) for r in written]

    def envelope(events: list[dict[str, Any]]) -> bytes:  # as CloudWatch Logs sends a batch
        return gzip.compress(
            json.dumps({"messageType": "DATA_MESSAGE", "logEvents": events}).encode()
        )

    other = {"id": "0", "timestamp": 0, "message": "START RequestId: 1 Version: 3"}
    raw = envelope([other, {"id": "1", "timestamp": 0, "message": lines[0]}]) + envelope(
        [{"id": str(i), "timestamp": 0, "message": line} for i, line in enumerate(lines[1:])]
    )
    extracted = ("\n".join(lines) + "\nnot json\n").encode()  # message extraction, one per line
    for body in (raw, gzip.compress(extracted), extracted):
        assert [r["rows"] for r in capture_records(body)] == [r["rows"] for r in written]


def test_windows_are_parsed_or_refused() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    assert parse_window("90m", None, now) == (now - dt.timedelta(minutes=90), now)
    assert parse_window(None, "2026-11-27T10:00:00", now)[0].hour == 10
    for bad in ("0h", "1 week", "h"):
        with pytest.raises(MonitorError):
            parse_window(bad, None, now)
    with pytest.raises(MonitorError):
        parse_window(None, "2026-11-28T00:00:00+00:00", now)


def test_the_report_is_one_page_with_a_plot_per_feature(predictor: Predictor) -> None:
    result = verdict(predictor, 2000, 108, "black-friday")
    page = render({**result, "model": "m<script>", "version": "3", "window": {
        "start": "a", "end": "b"}, "thresholds": drift.Thresholds().__dict__})  # fmt: skip
    assert page.count("<svg") == len(result["features"]) + 1  # and the prediction's
    assert "<script>" not in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_feature_that_drifted_through_its_missing_rate_says_so_not_its_psi(
    predictor: Predictor,
) -> None:
    """Issue 26 #13: the report showed "PSI 0.009 - drift" for a missing-rate drift."""
    records, _ = sample.generate(2000, 109)
    for record in records[::2]:  # half the offers gone at random: the rest keep their shape
        record.pop("discount_pct", None)
    result = drift.compare(predictor.manifest.baseline_profile, window_of(predictor, records))
    discount = next(f for f in result["features"] if f["name"] == "discount_pct")
    assert (discount["status"], discount["decided_by"]) == ("drift", "missing_rate")
    assert discount["reason"] == (
        f"missing rate {discount['missing_rate']:.1%} vs {discount['baseline_missing_rate']:.1%}"
    )
    assert discount["value"] < drift.Thresholds().psi_drift  # the PSI alone would not drift
    page = render({**result, "model": "m", "version": "1", "window": {"start": "a", "end": "b"}})
    row = page[page.index("<td>discount_pct</td>") :].split("</tr>")[0]
    assert discount["reason"] in row
    ok = next(f for f in result["features"] if f["status"] == "ok")
    assert ok["decided_by"] == ok["measure"]


@pytest.mark.parametrize("bins", [3, 11, 30, 80])
def test_axis_labels_never_overlap_whatever_the_number_of_bins(bins: int) -> None:
    """Issue 26 #14: written at 45 degrees, neighbouring labels stand a line of text apart
    across their baselines, and only every k-th is written where bins are many."""
    import re

    labels = [f"{i * 1.37:.3g}-{(i + 1) * 1.37:.3g}" for i in range(bins)]
    shares = [1 / bins] * bins
    svg = plot(
        {"name": "x", "status": "ok", "labels": labels, "baseline": shares, "current": shares}
    )
    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)"[^>]*rotate\(-45', svg)]
    assert xs, svg[:300]
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    assert all(gap * 0.7071 >= LABEL_FONT for gap in gaps), (bins, min(gaps))
    assert len(xs) >= min(bins, 10)  # thinned, not dropped: at least ten stay readable
