"""Issue 27, sequence 4: the alias moved by hand (`aws lambda update-alias`, the same UpdateAlias
call through moto) is drift. `status` and `history` name it, from what to what; no release
overwrites a move it did not make unless told to adopt it; `rollback` returns to the version
lambdaserve last recorded. Every refusal leaves the alias and the records as they were."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from support import Account


def _doc(result: Result) -> Any:
    """The command's --json document (the handler, run in-process here, logs to stdout too)."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "["))
    return json.loads("\n".join(lines[start:]))


def _released_twice(cli: Callable[..., Result], *bundles: Path) -> tuple[str, str]:
    """Both bundles published and deployed in turn: the function versions that served."""
    for bundle in bundles:
        assert cli("publish", str(bundle)).exit_code == 0
    first = _doc(cli("deploy", "retail-propensity", "1", "--json"))["version"]
    second = _doc(cli("deploy", "retail-propensity", "2", "--json"))["version"]
    return str(first), str(second)


def _by_hand(account: Account, version: str, weights: dict[str, float] | None = None) -> None:
    account.lam.update_alias(
        FunctionName=account.function,
        Name="live",
        FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights or {}},
    )


def _live(cli: Callable[..., Result]) -> dict[str, object]:
    status = _doc(cli("status", "--json"))
    return {"primary": status["versions"][0]["version"], "drift": status["drift"]}


def test_a_hand_move_is_named_refused_and_rolled_back_from(
    cli: Callable[..., Result], account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    first, second = _released_twice(cli, sample_bundle, second_bundle)
    assert _live(cli) == {"primary": second, "drift": None}

    _by_hand(account, first)
    drifted = _live(cli)["drift"]
    assert drifted == {
        "recorded": {"version": second, "weights": {}},
        "actual": {"version": first, "weights": {}},
        "summary": (
            f"live was moved outside lambdaserve: lambdaserve recorded version {second} (100%), "
            f"it now sends version {first} (100%)"
        ),
    }
    assert f"DRIFT: {drifted['summary']}" in cli("status").stdout
    history = cli("history")
    assert "DRIFT: live was moved outside lambdaserve" in history.stderr
    entries = len(_doc(cli("history", "--json")))

    for refused in (("deploy", "retail-propensity", "1"), ("promote",)):
        said = cli(*refused)
        assert said.exit_code == 5, said.output
        line = said.stderr.strip().splitlines()[-1]
        assert said.stderr.count("Error:") == 1, said.stderr
        assert line.startswith("Error: live was moved outside lambdaserve"), line
        assert "--adopt" in line
    assert _live(cli)["primary"] == first  # the alias as it was
    assert len(_doc(cli("history", "--json"))) == entries  # the records too

    # "previous", after a move made by hand, is the version lambdaserve last recorded.
    back = cli("rollback", "--json")
    assert back.exit_code == 0, back.output
    assert _doc(back)["version"] == second
    assert "moved outside lambdaserve" in back.stderr
    assert _live(cli) == {"primary": second, "drift": None}
    last = _doc(cli("history", "--json"))[-1]
    assert (last["from"]["version"], last["to"]["version"]) == (first, second)


def test_adopt_records_the_hand_move_then_releases_from_there(
    cli: Callable[..., Result], account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    first, second = _released_twice(cli, sample_bundle, second_bundle)
    _by_hand(account, first)

    adopted = cli("deploy", "retail-propensity", "2", "--canary", "10", "--adopt", "--json")
    assert adopted.exit_code == 0, adopted.output
    assert "adopting it: live was moved outside lambdaserve" in adopted.stderr
    entries = _doc(cli("history", "--json"))
    taken = entries[-2]
    assert taken["reason"] == "adopted a move made outside lambdaserve"
    assert (taken["from"]["version"], taken["to"]["version"]) == (second, first)
    assert taken["verification"]["status"] == "adopted"
    canary = _doc(adopted)
    assert canary["version"] == first  # the canary runs beside the adopted version
    assert _live(cli)["drift"] is None
