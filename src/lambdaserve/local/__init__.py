"""The local stack: the whole system on one machine, no Docker, no AWS account.

`runtime` reads `sam build` output and runs a function as Lambda lays it out; `worker` keeps one
process per function version; `endpoint` is the AWS endpoint (moto, plus Lambda Invoke);
`gateway` is API Gateway; `stack` puts them together for `lambdaserve local up`.
Never imported by Lambda code.
"""
