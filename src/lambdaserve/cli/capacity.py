"""`lambdaserve capacity`: the live figures of the cold-start strategy (reserved concurrency,
provisioned concurrency requested and allocated, its autoscaling range and scheduled peaks),
and `--set N` to change the provisioned concurrency of the alias."""

from __future__ import annotations

from typing import Any

import click
from botocore.exceptions import ClientError

from lambdaserve.alias import AliasState
from lambdaserve.cli.context import services_of
from lambdaserve.cli.exit_codes import CapacityNotReadyError
from lambdaserve.cli.output import emit, json_option, shares_text
from lambdaserve.release.errors import CanaryInProgressError
from lambdaserve.release.handover import NOT_FOUND, provisioned_config


def _provisioned(lam: Any, function: str, alias: str) -> dict[str, Any] | None:
    config = provisioned_config(lam, function, alias)
    if config is None:
        return None
    return {
        "requested": config.get("RequestedProvisionedConcurrentExecutions"),
        "allocated": config.get("AllocatedProvisionedConcurrentExecutions"),
        "available": config.get("AvailableProvisionedConcurrentExecutions"),
        "status": config.get("Status"),
        "status_reason": config.get("StatusReason"),
    }


def _autoscaling(scaling: Any, function: str, alias: str) -> dict[str, Any] | None:
    resource = f"function:{function}:{alias}"
    common = {"ServiceNamespace": "lambda", "ResourceId": resource}
    targets = scaling.describe_scalable_targets(ServiceNamespace="lambda", ResourceIds=[resource])
    if not targets["ScalableTargets"]:
        return None
    target = targets["ScalableTargets"][0]
    policies = scaling.describe_scaling_policies(**common)["ScalingPolicies"]
    tracking = [
        p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]
        for p in policies
        if "TargetTrackingScalingPolicyConfiguration" in p
    ]
    scheduled = scaling.describe_scheduled_actions(**common)["ScheduledActions"]
    return {
        "min": target["MinCapacity"],
        "max": target["MaxCapacity"],
        "target_utilization": tracking[0] if tracking else None,
        "scheduled": [
            {
                "name": a["ScheduledActionName"],
                "schedule": a["Schedule"],
                "min": a.get("ScalableTargetAction", {}).get("MinCapacity"),
                "max": a.get("ScalableTargetAction", {}).get("MaxCapacity"),
            }
            for a in scheduled
        ],
    }


def figures(services: Any) -> dict[str, Any]:
    """The documented `capacity --json` shape."""
    lam = services.client("lambda")
    function, alias = services.need("function"), services.alias
    reserved = lam.get_function_concurrency(FunctionName=function).get(
        "ReservedConcurrentExecutions"
    )
    provisioned = _provisioned(lam, function, alias)
    live = lam.get_alias(FunctionName=function, Name=alias)["FunctionVersion"]
    config = lam.get_function_configuration(FunctionName=function, Qualifier=live)
    snapstart = config.get("SnapStart", {}).get("ApplyOn") == "PublishedVersions"
    strategy = "provisioned" if provisioned else "snapstart" if snapstart else "none"
    try:
        autoscaling = _autoscaling(services.client("application-autoscaling"), function, alias)
    except ClientError:
        autoscaling = None  # not allowed to read it: say nothing rather than guess
    return {
        "function": function,
        "alias": alias,
        "strategy": strategy,
        "reserved_concurrency": reserved,
        "provisioned": provisioned,
        "autoscaling": autoscaling,
    }


def _text(data: dict[str, Any]) -> str:
    reserved = data["reserved_concurrency"]
    lines = [
        f"{data['function']}:{data['alias']}  strategy {data['strategy']}",
        "  reserved concurrency "
        + (str(reserved) if reserved is not None else "none (the account's pool)"),
    ]
    if p := data["provisioned"]:
        lines.append(
            f"  provisioned {p['allocated']}/{p['requested']} allocated, {p['status']}"
            + (f" ({p['status_reason']})" if p.get("status_reason") else "")
        )
    if a := data["autoscaling"]:
        lines.append(
            f"  autoscaling {a['min']}..{a['max']}, target utilisation {a['target_utilization']}"
        )
        lines += [f"    {s['name']}: {s['schedule']} -> min {s['min']}" for s in a["scheduled"]]
    return "\n".join(lines)


# Lambda's own limit on allocating provisioned concurrency is minutes; wait past it, then say so.
PROVISIONED_WAIT_SECONDS = 900


@click.command("capacity")
@click.option(
    "--set", "wanted", type=click.IntRange(min=0), help="provisioned concurrency (0: none)"
)
@click.option("--wait", is_flag=True, help="with --set: until the environments are READY")
@json_option
@click.pass_context
def capacity(ctx: click.Context, wanted: int | None, wait: bool, as_json: bool) -> None:
    """Show (or set) the alias's concurrency: reserved, provisioned, autoscaling, peaks."""
    services = services_of(ctx)
    if wanted is not None:
        _set(services, wanted, wait)
    emit(figures(services), as_json, _text)


def _set(services: Any, wanted: int, wait: bool) -> None:
    lam, function, alias = services.client("lambda"), services.need("function"), services.alias
    if wanted == 0:
        try:
            lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier=alias)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != NOT_FOUND:
                raise
        return
    alias_config = dict(lam.get_alias(FunctionName=function, Name=alias))
    if alias_config.get("RoutingConfig", {}).get("AdditionalVersionWeights"):
        raise CanaryInProgressError(
            f"a canary is in progress on {alias} "
            f"({shares_text(AliasState.from_alias(alias_config))}): Lambda does not change an "
            "alias's provisioned concurrency while it has weights; set it after promote or "
            "rollback"
        )
    lam.put_provisioned_concurrency_config(
        FunctionName=function, Qualifier=alias, ProvisionedConcurrentExecutions=wanted
    )
    deadline = services.clock() + PROVISIONED_WAIT_SECONDS
    while wait:
        status = _provisioned(lam, function, alias) or {}
        if status.get("status") == "READY":
            return
        if status.get("status") == "FAILED" or services.clock() > deadline:
            raise CapacityNotReadyError(f"provisioned concurrency did not become READY: {status}")
        click.echo(f"provisioned: {status.get('allocated')}/{wanted}, waiting", err=True)
        services.sleep(2)


COMMANDS = [capacity]
