"""Provisioned mode across alias moves (handover.py): a version is provisioned and READY before
a move gives it traffic, the version-level config goes once the alias's own is READY again, a
version that cannot be made ready leaves the alias where it was, and a rollback moves at once.
moto has no provisioned-concurrency API: `Provisioned` answers it as Lambda does (including
its refusal on an alias with weights), over moto's Lambda for everything else."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import Account

from lambdaserve.alias import AliasState
from lambdaserve.release.errors import FunctionUpdateError


class Provisioned:
    """moto's Lambda client plus Lambda's provisioned-concurrency calls; a config becomes
    READY after `polls` reads (or FAILED, for the versions in `failing`)."""

    def __init__(self, lam: Any, polls: int = 2, failing: frozenset[str] = frozenset()) -> None:
        self.lam, self.polls, self.failing = lam, polls, failing
        self.configs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lam, name)

    def update_alias(self, **kwargs: Any) -> Any:
        self.calls.append(("update_alias", kwargs["Name"], kwargs["FunctionVersion"]))
        if "live" in self.configs:  # Lambda re-splits the alias's environments
            self.configs["live"].update(Status="IN_PROGRESS", reads=0)
        return self.lam.update_alias(**kwargs)

    def put_provisioned_concurrency_config(self, **call: Any) -> None:
        qualifier, wanted = call["Qualifier"], call["ProvisionedConcurrentExecutions"]
        alias = self.lam.get_alias(FunctionName=call["FunctionName"], Name="live")
        if qualifier == "live" and alias.get("RoutingConfig", {}).get("AdditionalVersionWeights"):
            raise _error("InvalidParameterValueException", "Alias with weights can not be used")
        self.calls.append(("put", qualifier, wanted))
        self.configs[qualifier] = {"Requested": wanted, "Status": "IN_PROGRESS", "reads": 0}

    def get_provisioned_concurrency_config(self, **call: Any) -> Any:
        qualifier = call["Qualifier"]
        if qualifier not in self.configs:
            raise _error("ProvisionedConcurrencyConfigNotFoundException", "none")
        config = self.configs[qualifier]
        config["reads"] += 1
        if config["reads"] >= self.polls:
            config["Status"] = "FAILED" if qualifier in self.failing else "READY"
        return {
            "RequestedProvisionedConcurrentExecutions": config["Requested"],
            "Status": config["Status"],
            "StatusReason": "out of capacity",
        }

    def delete_provisioned_concurrency_config(self, **call: Any) -> None:
        self.calls.append(("delete", call["Qualifier"], None))
        del self.configs[call["Qualifier"]]


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "ProvisionedConcurrency")


@pytest.fixture
def provisioned(published: Account) -> Provisioned:
    _stack_asks(published, "10")  # ColdStartStrategy provisioned, ProvisionedConcurrency 10
    lam = Provisioned(published.lam)
    lam.configs["live"] = {"Requested": 10, "Status": "READY", "reads": 0}
    return lam


def _stack_asks(account: Account, floor: str) -> None:
    """What `sam deploy` leaves on $LATEST for a ColdStartStrategy (template.yaml)."""
    config = account.lam.get_function_configuration(FunctionName=account.function)
    env = config["Environment"]["Variables"] | {"PROVISIONED_CONCURRENCY": floor}
    account.lam.update_function_configuration(
        FunctionName=account.function, Environment={"Variables": env}
    )


def _deployer(account: Account, lam: Provisioned) -> Any:
    return account.deployer(lambda_client=lam, sleep=lambda _: None)


def test_a_canary_is_provisioned_and_ready_before_it_takes_traffic(
    published: Account, provisioned: Provisioned
) -> None:
    deployer = _deployer(published, provisioned)
    deployer.deploy("retail-propensity", "1")
    provisioned.calls.clear()
    deployer.deploy("retail-propensity", "2", canary_percent=10)
    canary = published.live().weights
    (version,) = canary
    # Its share of the alias's 10 (at least 1), READY, then the alias moves, then it goes.
    assert provisioned.calls == [
        ("put", version, 1),
        ("update_alias", "live", published.live().version),
        ("delete", version, None),
    ]
    deployer.step(50, "step", {"verdict": "pass"})
    assert ("put", version, 5) in provisioned.calls
    provisioned.calls.clear()
    deployer.promote()
    assert provisioned.calls[0] == ("put", version, 10)  # all of it, before all the traffic
    assert provisioned.calls[-1] == ("delete", version, None)
    assert set(provisioned.configs) == {"live"}


def test_a_version_that_cannot_be_provisioned_leaves_the_alias_as_it_was(
    published: Account,
) -> None:
    _stack_asks(published, "4")
    lam = Provisioned(published.lam, failing=frozenset({"3"}))
    lam.configs["live"] = {"Requested": 4, "Status": "READY", "reads": 0}
    deployer = _deployer(published, lam)
    deployer.deploy("retail-propensity", "1")
    before = published.live()
    with pytest.raises(FunctionUpdateError, match="out of capacity"):
        deployer.deploy("retail-propensity", "2")
    assert published.live() == before
    assert set(lam.configs) == {"live"}, "the failed version's config is removed"
    assert not [c for c in lam.calls if c[0] == "update_alias" and c[2] == "3"]


def test_a_rollback_moves_at_once(published: Account, provisioned: Provisioned) -> None:
    deployer = _deployer(published, provisioned)
    deployer.deploy("retail-propensity", "1")
    deployer.deploy("retail-propensity", "2", canary_percent=10)
    provisioned.calls.clear()
    deployer.rollback()
    assert [c[0] for c in provisioned.calls] == ["update_alias"]
    assert published.live().weights == {}


def test_without_provisioned_concurrency_a_move_is_one_alias_write(published: Account) -> None:
    lam = Provisioned(published.lam)
    deployer = _deployer(published, lam)
    deployer.deploy("retail-propensity", "1")
    deployer.deploy("retail-propensity", "2", canary_percent=10)
    deployer.promote()
    assert {c[0] for c in lam.calls} == {"update_alias"}


def test_shares_split_the_alias() -> None:
    assert AliasState("2", {"3": 0.1}).shares() == {"2": 0.9, "3": 0.1}
    assert AliasState.canary("2", "3", 12.5) == AliasState("2", {"3": 0.125})


def test_a_release_keeps_the_floor_the_stack_asks_for_on_live(published: Account) -> None:
    """The alias's declaration carries no provisioned concurrency (a change to it would move
    live), so the release keeps it: the floor where the alias has none, none where the stack
    asks for none."""
    _stack_asks(published, "4")
    lam = Provisioned(published.lam, polls=1)
    deployer = _deployer(published, lam)
    deployer.deploy("retail-propensity", "1")
    assert lam.configs["live"]["Requested"] == 4
    assert ("put", "live", 4) in lam.calls

    _stack_asks(published, "0")  # ColdStartStrategy back to none, then `make deploy`
    deployer.deploy("retail-propensity", "2")
    assert "live" not in lam.configs
    assert ("delete", "live", None) in lam.calls
