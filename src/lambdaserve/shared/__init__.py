"""No domain: JSON in and out at C speed, Lambda invocation, manifest signatures, thread
limits, the collector's freeze, SnapStart hooks. Imports nothing of lambdaserve but the root."""
