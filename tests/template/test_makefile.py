"""The Makefile as a new user meets it: `make help` reads as text, and nothing invents an AWS
region for a real deploy (issue 26 #1, #19)."""

from __future__ import annotations

import os
import re
import subprocess

from support import ROOT


def _make(*args: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_help_prints_text_not_make_syntax() -> None:
    said = _make("help")
    assert "make up" in said
    assert "make deploy" in said
    assert "$(" not in said


def test_make_deploy_takes_the_region_the_cli_resolves_and_invents_none() -> None:
    # -n: print what would run. The region is asked of `lambdaserve region` at run time.
    planned = _make("-n", "deploy", "STACK=shop", "-o", "build")
    assert "us-east-1" not in planned
    assert re.search(r"lambdaserve\s+region", planned)
    assert "--region $region" in planned
    assert "--no-confirm-changeset" in planned
    confirm = _make("-n", "deploy", "STACK=shop", "CONFIRM=1", "-o", "build")
    assert "--confirm-changeset" in confirm
    assert "--no-confirm-changeset" not in confirm


def test_make_deploy_asks_first_then_sam_deploys_then_releases_through_lambdaserve() -> None:
    """Issue 27: `sam deploy` never moves `live`; the release after it carries the change, and
    nothing is applied while a canary or another release is in flight."""
    planned = _make("-n", "deploy", "STACK=shop", "-o", "build")
    check = planned.index("release --check")
    sam = planned.index("sam deploy")
    release = planned.index(" release", sam)
    assert check < sam < release
    assert "&&" in planned[check:release]  # a refusal stops before `sam deploy`
    gitops = _make("-n", "deploy", "STACK=shop", "LOCK=lambdaserve.lock", "ADOPT=1", "-o", "build")
    assert re.search(r"shop release\s+\\?\s*--lock lambdaserve.lock --adopt", gitops)
    assert "release --check --adopt" in gitops
