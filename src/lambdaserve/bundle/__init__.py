"""Making bundles, at development time only (never in a layer): the bundle and its proofs,
the ONNX conversion with its parity proof, DataFrame column positions, and the sample
retail model. Imports `monitor` and below."""
