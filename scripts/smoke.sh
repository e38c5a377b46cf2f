#!/usr/bin/env bash
# Smoke test against a real AWS account (never run by CI): deploy STACK, call /predict, publish a
# second model, canary, promote, roll back, then delete everything. One PASS/FAIL line per step.
# Usage: make smoke STACK=lambdaserve-smoke   (needs AWS credentials and a region; docs: Deploying to AWS)
set -uo pipefail
STACK=${1:?usage: scripts/smoke.sh STACK}
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0 PATH="$PWD/.venv/bin:$PATH"
WORK=$(mktemp -d)
failed=0
# The region every step uses, resolved as the AWS CLI does (sam itself ignores AWS_REGION).
REGION=$(lambdaserve region) || exit 1
export AWS_DEFAULT_REGION=$REGION

step() {  # step NAME COMMAND...: run it, print one line, remember a failure
  local name=$1; shift
  if "$@" >"$WORK/$name.log" 2>&1; then
    echo "PASS $name"
  else
    echo "FAIL $name (log: $WORK/$name.log)"; failed=1
  fi
}

predict() {  # POST the example body; succeed on a 200 with predictions
  local answer
  answer=$(curl -sS --max-time 30 -X POST "$API/predict" -H "x-api-key: $KEY" \
    -H 'Content-Type: application/json' -d @examples/predict-body.json) || return 1
  echo "$answer"; grep -q '"predictions"' <<<"$answer"
}

step deploy make deploy STACK="$STACK" REGION="$REGION" PARAMS="DeploymentType=AllAtOnce"
if [ "$failed" = 0 ]; then
  eval "$(lambdaserve --stack "$STACK" endpoint)"
  sleep 5  # a new API key takes a moment to be accepted
  step predict predict
  step publish-v2 bash -c "lambdaserve sample train --out '$WORK/v2' --seed 9 \
    && lambdaserve --stack '$STACK' publish '$WORK/v2'"
  version=$(lambdaserve --stack "$STACK" versions retail-propensity --json 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["version"])')
  step canary lambdaserve --stack "$STACK" deploy retail-propensity "${version:-1}" --canary 10
  step predict-during-canary predict
  step promote lambdaserve --stack "$STACK" promote
  step rollback lambdaserve --stack "$STACK" rollback
  step predict-after-rollback predict
fi
step purge lambdaserve --stack "$STACK" purge --yes
step delete sam delete --stack-name "$STACK" --region "$REGION" --no-prompts
[ "$failed" = 0 ] && echo "smoke: all steps passed" || echo "smoke: FAILED (logs in $WORK)"
exit "$failed"
