"""Every model of the zoo answers the same through Open Inference Protocol tensors as through
/predict's records: the tensors (encoded by tritonclient, in binary) become the same matrix,
value for value, and the same predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tritonclient.http import InferenceServerClient, InferInput
from zoo import ZOO

from lambdaserve.bundle.make import make_bundle
from lambdaserve.serving import oip
from lambdaserve.serving.predictor import Predictor

_TYPES = {"number": ("FP64", np.float64), "integer": ("INT64", np.int64)}


def _tensors(predictor: Predictor, rows: list[dict[str, object]]) -> list[InferInput]:
    out = []
    for feature in predictor.manifest.features:
        values = [r.get(feature.name) for r in rows]
        if feature.type == "category":
            array, datatype = np.array(values, dtype=object), "BYTES"
        elif feature.type == "boolean":
            array, datatype = np.array(values, dtype=bool), "BOOL"
        elif any(v is None for v in values):  # a missing value: NaN, in a float tensor
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            datatype = "FP64"
        else:
            datatype, dtype = _TYPES[feature.type]
            array = np.array(values, dtype=dtype)
        tensor = InferInput(feature.name, [len(rows)], datatype)
        tensor.set_data_from_numpy(array, binary_data=True)
        out.append(tensor)
    return out


@pytest.mark.parametrize("kind", sorted(ZOO))
def test_tensors_make_the_same_matrix_and_answers_as_records(kind: str, tmp_path: Path) -> None:
    model = ZOO[kind]()
    make_bundle(
        model.estimator,
        name=model.name,
        spec=model.spec,
        sample_rows=model.requests,
        out_dir=tmp_path,
    )
    predictor = Predictor.load(tmp_path)
    # BYTES has no missing value: rows with a missing category are sent by /predict only.
    categories = [f.name for f in predictor.manifest.features if f.type == "category"]
    rows = [r for r in model.requests if all(r.get(c) is not None for c in categories)]
    assert rows
    body, json_size = InferenceServerClient.generate_request_body(_tensors(predictor, rows))
    request = oip.parse_request(*oip.split_body(body, str(json_size)), predictor.parser.max_rows)
    matrix = oip.matrix(oip.Layout(predictor.manifest), predictor.parser, request)
    expected = predictor.parse({"instances": rows})
    assert matrix.shape == expected.shape
    same = (matrix == expected) | ((matrix != matrix) & (expected != expected))  # NaN = NaN
    assert same.all()
    labels, probabilities = predictor.predict_arrays(matrix)
    answer = predictor.predict(expected)
    assert labels.tolist() == answer["predictions"]
    if probabilities is not None:
        assert probabilities.tolist() == answer["probabilities"]


@pytest.mark.parametrize("kind", sorted(ZOO))
def test_the_answer_decodes_to_predicts_values_and_types(kind: str, tmp_path: Path) -> None:
    """The inference response, read back by tritonclient, binary and JSON: the predictions and
    probabilities /predict answers, in the datatype the metadata announces."""
    from tritonclient.http import InferResult

    model = ZOO[kind]()
    make_bundle(
        model.estimator, name=model.name, spec=model.spec, sample_rows=model.requests,
        out_dir=tmp_path,
    )  # fmt: skip
    predictor = Predictor.load(tmp_path)
    layout = oip.Layout(predictor.manifest)
    matrix = predictor.parse({"instances": model.requests})
    answer = predictor.predict(matrix)
    labels, probabilities = predictor.predict_arrays(matrix)
    announced = {o["name"]: o["datatype"] for o in layout.metadata()["outputs"]}
    request = oip.InferRequest(inputs=[])
    for binary in (True, False):
        outputs = [
            (name, binary)
            for name in announced
            if probabilities is not None or name == "predictions"
        ]
        body, json_size = oip.encode_response(layout, request, outputs, labels, probabilities)
        result = InferResult.from_response_body(body, False, json_size)
        sent = {o["name"]: o["datatype"] for o in result.get_response()["outputs"]}
        assert sent["predictions"] == announced["predictions"]
        got = result.as_numpy("predictions").tolist()
        expected = answer["predictions"]
        if announced["predictions"] == "BYTES":
            got = [v.decode() if isinstance(v, bytes) else v for v in got]
        assert got == expected, (kind, binary)
        assert [type(v) for v in got] == [type(v) for v in expected], (kind, binary)
        if "probabilities" in answer:
            assert result.as_numpy("probabilities").tolist() == answer["probabilities"]
