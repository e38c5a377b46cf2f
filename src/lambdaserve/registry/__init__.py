"""The S3 model registry: immutable model versions and their layer zips (`store`), and the
verification of what may serve (`trust`: pins, sha256, signatures). Imports `serving` and
below."""
