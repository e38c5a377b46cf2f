"""A moto account holding what `sam deploy` creates (tests/support.py builds it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws
from support import Account, moto_account


@pytest.fixture
def account(sample_bundle: Path, tmp_path: Path) -> Iterator[Account]:
    with mock_aws():
        yield moto_account(sample_bundle, tmp_path / "opt")


@pytest.fixture
def published(account: Account, sample_bundle: Path, second_bundle: Path) -> Account:
    account.registry.publish(sample_bundle, "ci")
    account.registry.publish(second_bundle, "ci")
    return account
