"""A moto account holding what `sam deploy` creates (tests/support.py builds it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from moto import mock_aws
from support import Account, moto_account

from lambdaserve.cli.context import Services
from lambdaserve.cli.main import main


@pytest.fixture
def account(sample_bundle: Path, tmp_path: Path) -> Iterator[Account]:
    with mock_aws():
        yield moto_account(sample_bundle, tmp_path / "opt")


@pytest.fixture
def published(account: Account, sample_bundle: Path, second_bundle: Path) -> Account:
    account.registry.publish(sample_bundle, "ci")
    account.registry.publish(second_bundle, "ci")
    return account


@pytest.fixture
def cli(account: Account, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """`lambdaserve ARGS` through click against the moto account, its function's versions
    answered in-process; stdout and stderr apart."""
    monkeypatch.setenv("LAMBDASERVE_BUCKET", account.bucket)
    monkeypatch.setenv("LAMBDASERVE_FUNCTION", account.function)
    monkeypatch.setenv("LAMBDASERVE_SSM_PREFIX", "/lambdaserve/cli/main")

    def invoke(*args: str) -> Result:
        return CliRunner(mix_stderr=False).invoke(
            main, list(args), obj=Services(invoker=account.invoker)
        )

    return invoke


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch, sample_bundle: Path) -> pytest.MonkeyPatch:
    """The predict function's environment as the template gives it, serving the sample."""
    from lambdaserve.serving.predictor import sha256_of

    for key, value in {
        "POWERTOOLS_SERVICE_NAME": "lambdaserve",
        "POWERTOOLS_METRICS_NAMESPACE": "lambdaserve-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "MODEL_DIR": str(sample_bundle),
        "MODEL_NAME": "retail-propensity",
        "MODEL_SHA256": sha256_of(sample_bundle / "model.joblib"),
    }.items():
        monkeypatch.setenv(key, value)
    return monkeypatch
