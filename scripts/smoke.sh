#!/usr/bin/env bash
# Smoke test against a real AWS account (never run by CI): deploy STACK, call /predict, publish a
# second model, then the one-owner sequences 1 and 2 (an infrastructure change reaches traffic
# through the release path and keeps a rolled-back model; one during a canary is refused), then
# delete everything. One PASS/FAIL line per step.
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

live_is() {  # live_is MODEL_VERSION MEMORY: succeed if live serves that model on that memory
  local got
  got=$(lambdaserve --stack "$STACK" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin); v = s["versions"]
print(v[0]["model"]["version"] if len(v) == 1 else "canary")')
  local memory
  memory=$(aws lambda get-function-configuration --region "$REGION" \
    --function-name "$(lambdaserve --stack "$STACK" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["function"])')" \
    --qualifier live --query MemorySize --output text)
  echo "live: model v$got on $memory MB (want v$1 on $2 MB)"
  [ "$got" = "$1" ] && [ "$memory" = "$2" ]
}

refuses() {  # refuses COMMAND...: succeed if it fails saying a canary is in progress
  local out rc
  out=$("$@" 2>&1); rc=$?
  echo "$out"
  [ "$rc" -ne 0 ] && grep -q "a canary is in progress" <<<"$out"
}

step deploy make deploy STACK="$STACK" REGION="$REGION"
if [ "$failed" = 0 ]; then
  eval "$(lambdaserve --stack "$STACK" endpoint)"
  sleep 5  # a new API key takes a moment to be accepted
  step predict predict
  step publish-v2 bash -c "lambdaserve sample train --out '$WORK/v2' --seed 9 \
    && lambdaserve --stack '$STACK' publish '$WORK/v2'"
  version=$(lambdaserve --stack "$STACK" versions retail-propensity --json 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["version"])')
  version=${version:-1}
  # Sequence 1 (docs: Releases, one owner of live): an infrastructure change reaches traffic
  # on the released model; after a rollback, the next one keeps the rolled-back model.
  step deploy-v2 lambdaserve --stack "$STACK" deploy retail-propensity "$version"
  step infra-change make deploy STACK="$STACK" REGION="$REGION" PARAMS="MemorySize=1536"
  step infra-reached-traffic live_is "$version" 1536
  step predict-after-infra-change predict
  step rollback lambdaserve --stack "$STACK" rollback
  step infra-change-2 make deploy STACK="$STACK" REGION="$REGION" PARAMS="MemorySize=2048"
  step rolled-back-model-kept live_is "$version" 2048
  # Sequence 2: an infrastructure change during a canary is refused; live keeps its canary.
  step publish-v3 bash -c "lambdaserve sample train --out '$WORK/v3' --seed 11 \
    && lambdaserve --stack '$STACK' publish '$WORK/v3'"
  step canary lambdaserve --stack "$STACK" deploy retail-propensity "$((version + 1))" --canary 10
  step infra-change-refused-during-canary \
    refuses make deploy STACK="$STACK" REGION="$REGION" PARAMS="MemorySize=1024"
  step canary-untouched live_is canary 2048
  step predict-during-canary predict
  step promote lambdaserve --stack "$STACK" promote
  step predict-after-promote predict
fi
step purge lambdaserve --stack "$STACK" purge --yes
step delete sam delete --stack-name "$STACK" --region "$REGION" --no-prompts
[ "$failed" = 0 ] && echo "smoke: all steps passed" || echo "smoke: FAILED (logs in $WORK)"
exit "$failed"
