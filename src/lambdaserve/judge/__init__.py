"""Every verdict on a candidate version (ships): the canary's checks (`canary`), the evidence
they read, the scheduled judge of the CodeDeploy path, the shadow's report, and the
PreTraffic hook. Imports `monitor` and below."""
