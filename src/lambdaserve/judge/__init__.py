"""Every verdict on a candidate version, given by the release path (the CLI), never in a
Lambda function: the canary's checks (`canary`), the evidence they read, and the shadow's
report. Imports `monitor` and below."""
