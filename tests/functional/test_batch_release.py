"""The batch function follows the model `live` serves alone: deploy, promote and rollback move
its alias too; a canary does not (a batch never scores with an unreleased model)."""

from __future__ import annotations

from typing import Any

from support import BATCH_FUNCTION, Account

from lambdaserve.release.function_versions import function_env


def _batch_pins(account: Account) -> tuple[str, str]:
    config: dict[str, Any] = dict(
        account.lam.get_function_configuration(FunctionName=BATCH_FUNCTION, Qualifier="live")
    )
    return function_env(config).get("MODEL_VERSION", ""), config["Layers"][-1]["Arn"]


def _predict_pins(account: Account) -> tuple[str, str]:
    version = account.live().version
    config: dict[str, Any] = dict(
        account.lam.get_function_configuration(FunctionName=account.function, Qualifier=version)
    )
    return function_env(config).get("MODEL_VERSION", ""), config["Layers"][-1]["Arn"]


def test_batch_follows_deploy_promote_and_rollback_but_never_a_canary(
    published: Account,
) -> None:
    deployer = published.deployer()  # the predict function names its follower
    deployer.deploy("retail-propensity", "1")
    assert _batch_pins(published) == _predict_pins(published)
    assert _batch_pins(published)[0] == "1"
    deployer.deploy("retail-propensity", "2", canary_percent=10)
    assert _batch_pins(published)[0] == "1"  # the canary's model is not released
    deployer.promote()
    assert _batch_pins(published) == _predict_pins(published)
    assert _batch_pins(published)[0] == "2"
    deployer.rollback()
    assert _batch_pins(published)[0] == "1"
    assert _batch_pins(published) == _predict_pins(published)


def test_following_twice_publishes_no_new_batch_version(published: Account) -> None:
    deployer = published.deployer(followers=(BATCH_FUNCTION,))
    deployer.deploy("retail-propensity", "1")
    versions = published.lam.list_versions_by_function(FunctionName=BATCH_FUNCTION)["Versions"]
    served = dict(
        published.lam.get_function_configuration(
            FunctionName=published.function, Qualifier=published.live().version
        )
    )
    assert deployer.followers(served)[0].follow(served) is None
    again = published.lam.list_versions_by_function(FunctionName=BATCH_FUNCTION)["Versions"]
    assert len(again) == len(versions)
