"""lambdaserve: scikit-learn models on AWS Lambda, versioned, canaried and rolled back by alias.

The rooms, from the bottom up (each imports only the rooms below it; `make lint` holds that):

    manifest, problem, alias   the root contracts: the bundle, the error body, the alias state
    client                     the HTTP client (imports nothing of lambdaserve)
    shared/                    no domain: JSON, invocation, signatures, threads, GC, SnapStart
    serving/                   the predict function's library                       (ships)
    batch/ monitor/ registry/  batch scoring (ships), drift monitoring (ships), the model registry
    judge/ bundle/             verdicts on a candidate (ships); making bundles (dev time only)
    release/                   function versions and the alias: the one mover of traffic
    local/                     the Docker-free local stack
    cli/                       the `lambdaserve` command

What ships to Lambda is the folders marked above plus the root contracts (src/Makefile).
Importing the package imports nothing else.
"""

__version__ = "0.1.0"
