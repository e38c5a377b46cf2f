"""The Open Inference Protocol (KServe v2 REST) on the same model, validation and scorer as
/predict, with Triton's binary data extension, so tritonclient, KServe's InferenceRESTClient,
MLServer's and Seldon's clients call lambdaserve unchanged.

Sources: kserve/open-inference-protocol, specification/protocol/inference_rest.md (the routes,
the request and response objects, `{"error": ...}`), and triton-inference-server/server,
docs/protocol/extension_binary_data.md (`Inference-Header-Content-Length`,
`binary_data_size`, `binary_data_output`, BYTES as a 4-byte little-endian length then the
bytes, tensors in row-major order).

What the served model looks like here:
- Inputs: one tensor per feature, named as the feature, shape `[n]` or `[n, 1]`; numbers as
  FP16/FP32/FP64 or INT*/UINT*, booleans as BOOL, categories as BYTES. For a model whose
  features are all numeric, one `[n, k]` tensor (any name) in the feature order is also taken.
  A NaN in a floating-point tensor is a missing value (an absent feature: OIP has no null);
  an optional feature's tensor may be left out.
- Outputs: `predictions` (`[n]`: the class as INT64, BYTES or BOOL as the classes are, FP64
  for a regressor, INT64 for a cluster or an outlier flag) and, for a classifier with
  probabilities, `probabilities` (`[n, classes]`, FP64, in the order of `/model`'s classes).
- Every value passes the same per-feature checks as /predict's, with the same messages.

Binary outputs need a gateway that can return bytes: API Gateway decodes a base64 answer only
when the request's first Accept header is a binary media type. So outputs are binary when asked
for (`binary_data`, `binary_data_output`) and the request accepts application/octet-stream;
otherwise they come as JSON `data`, which every OIP client reads too (tritonclient sends no
Accept header unless told: docs, Open Inference Protocol).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lambdaserve.problem import (
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RequestError,
    SchemaViolationError,
    UnsupportedMediaTypeError,
)
from lambdaserve.shared import jsonio

if TYPE_CHECKING:
    from lambdaserve.manifest import Feature, Manifest
    from lambdaserve.serving.schema import RequestParser

HEADER_LENGTH = "inference-header-content-length"
BINARY_TYPE = "application/octet-stream"
PROTOCOL_NAME = "lambdaserve"
EXTENSIONS = ["binary_tensor_data"]  # what GET /v2 lists, in Triton's name for the extension

# The datatypes of the protocol and the numpy types their binary form is (little-endian).
NUMERIC_TYPES: dict[str, str] = {
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = frozenset([*NUMERIC_TYPES, "BOOL", "BYTES"])
_FEATURE_TYPES = {
    "number": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "category": "BYTES",
}
MAX_DIMENSIONS = 2  # [rows] or [rows, columns]


def error_answer(error: RequestError) -> tuple[int, str]:
    """A refusal as the protocol answers one: its status and `{"error": ...}`, the per-value
    problems written into the one message (the protocol has no list of them)."""
    message = error.detail
    if error.errors:
        listed = "; ".join(
            f"row {e.row} {e.field}: {e.message}" if e.field else f"row {e.row}: {e.message}"
            for e in error.errors[:20]
        )
        more = len(error.errors) - 20
        message = f"{message}: {listed}" + (f"; and {more} more" if more > 0 else "")
    return error.status, json.dumps({"error": message})


@dataclass
class Tensor:
    """One input tensor of a request, its values flat in row-major order."""

    name: str
    shape: list[int]
    datatype: str
    values: np.ndarray | list[Any]

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 0


@dataclass
class InferRequest:
    """A parsed inference request: its inputs, and what it asks back."""

    inputs: list[Tensor]
    request_id: str | None = None
    outputs: dict[str, bool | None] = field(default_factory=dict)  # name -> binary asked
    binary_output: bool = False


def split_body(raw: bytes, header_length: str | None) -> tuple[Any, bytes]:
    """The JSON header and the binary tail of a request body (the binary extension), or a 400."""
    if header_length is None:
        header, tail = raw, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise MalformedRequestError(
                f"Inference-Header-Content-Length must be a number of bytes, got "
                f"{header_length[:40]!r}"
            ) from None
        if not 0 < size <= len(raw):
            raise MalformedRequestError(
                f"Inference-Header-Content-Length is {size}, the body has {len(raw)} bytes"
            )
        header, tail = raw[:size], raw[size:]
    try:
        return jsonio.loads(header.decode("utf-8"), header), tail
    except UnicodeDecodeError:
        raise MalformedRequestError("the JSON header is not UTF-8") from None
    except jsonio.DuplicateKeyError as exc:  # ambiguous: refused, as on /predict
        raise MalformedRequestError(str(exc)) from None
    except ValueError as exc:
        raise MalformedRequestError(f"the JSON header is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedRequestError("the JSON header is nested too deeply") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedRequestError(f"{where} must be an object")
    return value


def _flag(parameters: dict[str, Any], name: str, where: str) -> bool | None:
    value = parameters.get(name)
    if value is not None and not isinstance(value, bool):
        raise MalformedRequestError(f"{where} parameter {name!r} must be true or false")
    return value


def parse_request(header: Any, tail: bytes, max_rows: int) -> InferRequest:
    """The inference request in a body's header and binary tail, or a 400/413 saying why not."""
    if not isinstance(header, dict):
        raise MalformedRequestError("the inference request must be a JSON object")
    unknown = sorted(set(header) - {"id", "inputs", "outputs", "parameters"})
    if unknown:
        raise MalformedRequestError(f"unknown keys in the inference request: {unknown}")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise MalformedRequestError("'id' must be a string")
    parameters = _object(header.get("parameters"), "'parameters'")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise MalformedRequestError("'inputs' must be a non-empty list of tensors")
    offset, tensors = 0, []
    for number, raw in enumerate(inputs):
        tensor, offset = _input(raw, number, tail, offset, max_rows)
        tensors.append(tensor)
    if offset != len(tail):
        raise MalformedRequestError(
            f"the binary data is {len(tail)} bytes, the inputs' binary_data_size add up to {offset}"
        )
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise MalformedRequestError("two inputs have the same name")
    outputs: dict[str, bool | None] = {}
    for raw in header.get("outputs") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise MalformedRequestError("each of 'outputs' must be an object with a 'name'")
        out_parameters = _object(raw.get("parameters"), f"output {raw['name']!r}'s 'parameters'")
        if out_parameters.get("classification"):
            raise MalformedRequestError(
                "the classification extension is not supported: ask for 'probabilities'"
            )
        outputs[raw["name"]] = _flag(out_parameters, "binary_data", f"output {raw['name']!r}")
    if header.get("outputs") is not None and not isinstance(header["outputs"], list):
        raise MalformedRequestError("'outputs' must be a list")
    binary = bool(_flag(parameters, "binary_data_output", "the request's"))
    return InferRequest(tensors, request_id, outputs, binary)


def _input(raw: Any, number: int, tail: bytes, offset: int, max_rows: int) -> tuple[Tensor, int]:
    where = f"input {number}"
    if not isinstance(raw, dict):
        raise MalformedRequestError(f"{where} must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedRequestError(f"{where} needs a 'name'")
    where = f"input {name[:64]!r}"
    datatype, shape = raw.get("datatype"), raw.get("shape")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise MalformedRequestError(f"{where}: unknown datatype {str(datatype)[:32]!r}")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_DIMENSIONS
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise MalformedRequestError(
            f"{where}: 'shape' must be [rows] or [rows, columns] of non-negative integers"
        )
    if shape[0] == 0:
        raise MalformedRequestError(f"{where}: no rows")
    if shape[0] > max_rows:
        raise PayloadTooLargeError(
            f"{shape[0]} rows is more than this endpoint's limit of {max_rows} per request"
        )
    count = math.prod(shape)
    parameters = _object(raw.get("parameters"), f"{where}'s 'parameters'")
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0:
            raise MalformedRequestError(f"{where}: binary_data_size must be a number of bytes")
        if "data" in raw:
            raise MalformedRequestError(f"{where} has both 'data' and binary_data_size")
        if offset + size > len(tail):
            raise MalformedRequestError(
                f"{where}: binary_data_size {size} goes past the body's end"
            )
        values = _binary_values(tail[offset : offset + size], datatype, count, where)
        return Tensor(name, shape, datatype, values), offset + size
    if "data" not in raw:
        raise MalformedRequestError(f"{where} has neither 'data' nor binary_data_size")
    values = _json_values(raw["data"], datatype, count, where)
    return Tensor(name, shape, datatype, values), offset


def _binary_values(chunk: bytes, datatype: str, count: int, where: str) -> np.ndarray | list[Any]:
    if datatype == "BYTES":
        return _deserialize_bytes(chunk, count, where)
    dtype = np.dtype(NUMERIC_TYPES.get(datatype, "u1"))  # BOOL: one byte each
    if len(chunk) != count * dtype.itemsize:
        raise MalformedRequestError(
            f"{where}: {len(chunk)} bytes of binary data for {count} {datatype} values "
            f"({count * dtype.itemsize} bytes)"
        )
    if datatype == "BOOL":
        octets = np.frombuffer(chunk, dtype=np.uint8)
        if (octets > 1).any():
            raise MalformedRequestError(f"{where}: a BOOL byte must be 0 or 1")
        return octets.astype(bool)
    return np.frombuffer(chunk, dtype=dtype)


_LENGTH = struct.Struct("<I")


def _deserialize_bytes(chunk: bytes, count: int, where: str) -> list[Any]:
    """BYTES in the binary form: each element a 4-byte little-endian length and its bytes.
    The loop only slices; each distinct value is decoded once (categories repeat)."""
    raw: list[bytes] = []
    append, unpack = raw.append, _LENGTH.unpack_from
    position, end = 0, len(chunk)
    try:
        for _ in range(count):
            (length,) = unpack(chunk, position)
            position += 4
            stop = position + length
            if stop > end:
                raise MalformedRequestError(f"{where}: a BYTES element goes past its binary data")
            append(chunk[position:stop])
            position = stop
    except struct.error:
        raise MalformedRequestError(f"{where}: a BYTES element's length is cut off") from None
    if position != end:
        raise MalformedRequestError(f"{where}: more BYTES elements than the shape's {count} values")
    try:
        text = {value: value.decode("utf-8") for value in set(raw)}
    except UnicodeDecodeError:
        raise MalformedRequestError(f"{where}: a BYTES element is not UTF-8") from None
    return list(map(text.__getitem__, raw))


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for value in data:
        out.extend(_flatten(value))
    return out


def _json_values(data: Any, datatype: str, count: int, where: str) -> np.ndarray | list[Any]:
    try:
        values = _flatten(data)
    except RecursionError:
        raise MalformedRequestError(f"{where}: 'data' is nested too deeply") from None
    if len(values) != count:
        raise MalformedRequestError(
            f"{where}: {len(values)} values in 'data' for a shape of {count} values"
        )
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in values):
            raise MalformedRequestError(f"{where}: BYTES data must be strings")
        return values
    if datatype == "BOOL":
        if not all(isinstance(v, bool) for v in values):
            raise MalformedRequestError(f"{where}: BOOL data must be true or false")
        return np.array(values, dtype=bool)
    kinds = set(map(type, values))
    allowed = {int, float} if datatype.startswith("FP") else {int}
    if kinds - allowed:
        wanted = "numbers" if datatype.startswith("FP") else "integers"
        raise MalformedRequestError(f"{where}: {datatype} data must be {wanted}")
    if datatype.startswith("FP"):
        # JSON has no NaN: a float tensor's missing values come as null only in binary form.
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:
            raise MalformedRequestError(f"{where}: a value is too large") from None
    return values  # Python ints, checked as /predict checks them (range, exactness)


class Layout:
    """How one model's features map to OIP tensors, both ways."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.features: tuple[Feature, ...] = tuple(manifest.features)
        self.numeric = all(f.type in ("number", "integer") for f in self.features)

    def metadata(self) -> dict[str, Any]:
        """GET /v2/models/{name}: the inputs from the feature spec, and the outputs."""
        m = self.manifest
        inputs = [
            {"name": f.name, "datatype": _FEATURE_TYPES[f.type], "shape": [-1]}
            for f in self.features
        ]
        outputs = [{"name": "predictions", "datatype": self.label_type(), "shape": [-1]}]
        if m.task == "classification":
            outputs.append(
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(m.classes or [])]}
            )
        return {
            "name": m.name,
            "versions": [m.version] if m.version else [],
            "platform": "onnxruntime_onnx" if m.engine == "onnx" else "sklearn",
            "inputs": inputs,
            "outputs": outputs,
        }

    def label_type(self) -> str:
        """The datatype of `predictions`."""
        if self.manifest.task == "regression":
            return "FP64"
        if self.manifest.task != "classification":  # a cluster, or an outlier flag (-1/1)
            return "INT64"
        classes = self.manifest.classes or []
        if all(isinstance(c, bool) for c in classes):
            return "BOOL"
        if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            return "INT64"
        return "BYTES"

    def columns(self, request: InferRequest) -> tuple[int, dict[str, Tensor]] | np.ndarray:
        """The request's tensors by feature (rows, {feature: tensor}), or, for one `[n, k]`
        tensor of an all-numeric model, that tensor as an `[n, k]` float matrix of values
        still to check."""
        tensors = request.inputs
        if len(tensors) == 1 and len(tensors[0].shape) == 2 and tensors[0].shape[1] != 1:
            return self._matrix_tensor(tensors[0])
        by_name: dict[str, Tensor] = {}
        known = {f.name: f for f in self.features}
        for tensor in tensors:
            feature = known.get(tensor.name)
            if feature is None:
                raise MalformedRequestError(
                    f"unknown input {tensor.name[:64]!r}: the inputs are the model's features "
                    "(GET /v2/models/{name} lists them)"
                )
            if len(tensor.shape) == 2 and tensor.shape[1] != 1:
                raise MalformedRequestError(
                    f"input {tensor.name!r}: one feature's tensor is [rows] or [rows, 1]"
                )
            _check_type(feature, tensor)
            by_name[tensor.name] = tensor
        rows = {t.rows for t in tensors}
        if len(rows) > 1:
            raise MalformedRequestError(
                f"the inputs have different numbers of rows: {sorted(rows)}"
            )
        missing = [f.name for f in self.features if f.required and f.name not in by_name]
        if missing:
            raise MalformedRequestError(f"missing input(s) for required feature(s): {missing}")
        return rows.pop(), by_name

    def _matrix_tensor(self, tensor: Tensor) -> np.ndarray:
        k = len(self.features)
        if not self.numeric:
            raise MalformedRequestError(
                f"input {tensor.name!r}: one [rows, columns] tensor serves a model whose "
                "features are all numbers; send one tensor per feature"
            )
        if tensor.shape[1] != k:
            raise MalformedRequestError(
                f"input {tensor.name!r} has {tensor.shape[1]} columns, the model {k} features"
            )
        if tensor.datatype not in NUMERIC_TYPES:
            raise MalformedRequestError(f"input {tensor.name!r}: numbers need a numeric datatype")
        return _as_float(tensor).reshape(tensor.shape)


def _check_type(feature: Feature, tensor: Tensor) -> None:
    fits = {
        "category": tensor.datatype == "BYTES",
        "boolean": tensor.datatype == "BOOL",
    }.get(feature.type, tensor.datatype in NUMERIC_TYPES)
    if not fits:
        raise MalformedRequestError(
            f"input {tensor.name!r}: feature {feature.name!r} is a {feature.type}, which takes "
            f"{_FEATURE_TYPES[feature.type] if feature.type != 'number' else 'FP32 or FP64'}"
            f", not {tensor.datatype}"
        )


def _as_float(tensor: Tensor) -> np.ndarray:
    """A numeric tensor's values as float64 (ints beyond 2**53 are refused, as by /predict)."""
    values = tensor.values
    if isinstance(values, list):  # JSON integers
        if any(abs(v) > 2**53 for v in values):
            raise SchemaViolationError(
                f"input {tensor.name!r}: a value is too large to be represented exactly"
            )
        return np.array(values, dtype=np.float64)
    if (
        values.dtype.kind in "iu"
        and values.size
        and np.abs(values.astype(np.float64)).max() > 2**53
    ):
        raise SchemaViolationError(
            f"input {tensor.name!r}: a value is too large to be represented exactly"
        )
    return values.astype(np.float64)


def feature_values(feature: Feature, tensor: Tensor | None, rows: int) -> list[Any]:
    """One feature's values as /predict's JSON values (None: missing), for the exact checks."""
    if tensor is None:
        return [None] * rows
    if feature.type == "category":
        return list(tensor.values)
    if feature.type == "boolean":
        return [bool(v) for v in tensor.values]
    if tensor.datatype.startswith("FP"):
        return [None if v != v else v for v in _as_float(tensor).tolist()]  # NaN: missing
    return [int(v) for v in tensor.values]


def float_column(feature: Feature, tensor: Tensor | None, rows: int) -> np.ndarray:
    """A numeric or boolean feature's column as float64, NaN where missing."""
    if tensor is None:
        return np.full(rows, np.nan)
    if feature.type == "boolean":
        return np.asarray(tensor.values, dtype=np.float64)
    return _as_float(tensor)


def matrix(layout: Layout, parser: RequestParser, request: InferRequest) -> np.ndarray:
    """The request's rows as the model's input matrix, every value checked as /predict checks
    it (the vectorised path when all are valid, else the exact one with its messages)."""
    got = layout.columns(request)
    if isinstance(got, np.ndarray):  # one [n, k] tensor of an all-numeric model
        rows = got.shape[0]
        columns: dict[str, Any] = {f.name: got[:, i] for i, f in enumerate(layout.features)}
        fast = parser.tensor_columns(columns, rows)
        if fast is not None:
            return fast
        records = [
            {f.name: (None if v != v else v) for f, v in zip(layout.features, row, strict=True)}
            for row in got.tolist()
        ]
        return parser.exact(records)
    rows, by_name = got
    columns = {
        f.name: (
            list(by_name[f.name].values)
            if f.type == "category"
            else float_column(f, by_name[f.name], rows)
        )
        for f in layout.features
        if f.name in by_name
    }
    fast = parser.tensor_columns(columns, rows)
    if fast is not None:
        return fast
    values = [feature_values(f, by_name.get(f.name), rows) for f in layout.features]
    names = [f.name for f in layout.features]
    records = [
        {n: v for n, v in zip(names, row, strict=True) if v is not None}
        for row in zip(*values, strict=True)
    ]
    return parser.exact(records)


def requested(
    layout: Layout, request: InferRequest, accepts_binary: bool
) -> list[tuple[str, bool]]:
    """The outputs to answer and whether each goes in binary form."""
    available = ["predictions"]
    if layout.manifest.task == "classification":
        available.append("probabilities")
    if not request.outputs:
        return [(name, request.binary_output and accepts_binary) for name in available]
    unknown = sorted(set(request.outputs) - set(available))
    if unknown:
        raise MalformedRequestError(f"unknown output(s) {unknown}: this model has {available}")
    return [
        (name, accepts_binary and (request.binary_output if asked is None else asked))
        for name, asked in request.outputs.items()
    ]


def _serialize_bytes(values: Sequence[Any]) -> bytes:
    parts = []
    for value in values:
        encoded = str(value).encode("utf-8")
        parts.append(struct.pack("<I", len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


def _output_array(layout: Layout, name: str, labels: np.ndarray, probabilities: Any) -> np.ndarray:
    if name == "probabilities":
        if probabilities is None:
            raise MalformedRequestError("this model answers no probabilities")
        return np.asarray(probabilities, dtype=np.float64)
    return np.asarray(labels)


def encode_response(
    layout: Layout,
    request: InferRequest,
    outputs: list[tuple[str, bool]],
    labels: np.ndarray,
    probabilities: np.ndarray | None,
) -> tuple[bytes, int | None]:
    """The inference response: its body, and the JSON header's length when binary data
    follows it (None: the body is all JSON)."""
    m = layout.manifest
    label_type = layout.label_type()
    tensors, tail = [], []
    for name, binary in outputs:
        array = _output_array(layout, name, labels, probabilities)
        datatype = label_type if name == "predictions" else "FP64"
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            if datatype == "BYTES":
                raw = _serialize_bytes(array.ravel().tolist())
            elif datatype == "BOOL":
                raw = array.astype(bool).tobytes()
            else:
                raw = array.astype(NUMERIC_TYPES[datatype]).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            tail.append(raw)
        else:
            flat = array.ravel()
            if datatype == "BYTES":
                entry["data"] = [str(v) for v in flat.tolist()]
            elif datatype == "INT64":
                entry["data"] = [int(v) for v in flat.tolist()]
            else:
                entry["data"] = flat.tolist()
        tensors.append(entry)
    body: dict[str, Any] = {"model_name": m.name, "model_version": m.version or ""}
    if request.request_id is not None:
        body["id"] = request.request_id
    body["outputs"] = tensors
    header = json.dumps(body, separators=(",", ":")).encode()
    if not tail:
        return header, None
    return header + b"".join(tail), len(header)


def check_model(manifest: Manifest, name: str, version: str | None) -> None:
    """A 404 unless the path names the served model (and, if given, its version)."""
    if name != manifest.name:
        raise NotFoundError(f"no model {name[:64]!r}: this endpoint serves {manifest.name!r}")
    if version is not None and version != (manifest.version or ""):
        raise NotFoundError(
            f"no version {version[:32]!r} of {manifest.name!r}: "
            f"version {manifest.version!r} is live"
        )


def check_content_type(content_type: str | None) -> None:
    """JSON, or binary with the header length, or none at all (tritonclient sends none)."""
    if content_type is None:
        return
    media = content_type.split(";")[0].strip().lower()
    if media and media not in ("application/json", BINARY_TYPE) and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"send application/json or {BINARY_TYPE}, not {media[:80]!r}"
        )


def server_metadata(version: str) -> dict[str, Any]:
    """GET /v2."""
    return {"name": PROTOCOL_NAME, "version": version, "extensions": EXTENSIONS}
