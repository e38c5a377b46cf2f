# lambdaserve — every command the README names. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins an older boto3 than moto and the SAM CLI accept: it gets a venv of its own.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
BUILD_DIR := .aws-sam/build
EVENT ?= events/predict.json
PORT ?= 3000
ARCH ?= x86_64
AWS_PORT ?= 4566
export SAM_CLI_TELEMETRY := 0

STACK ?=
PARAMS ?=
DEPLOY_FLAGS ?=

.PHONY: help venv test test-fast lint docs build validate invoke sample up bench bench-publish bench-batch bench-monitoring bench-engines bench-protocols bench-gc bench-shadow loadtest clean deploy account-setup smoke

help: ## list the commands
	@grep -E '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml layers/runtime/requirements.txt layers/onnx/requirements.txt requirements/cli.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create .venv (Python 3.12) with the package and its dev tools

test: $(STAMP) ## run the whole test suite (unit, functional, template, built artifact, e2e): CI
	$(BIN)/pytest

test-fast: $(STAMP) ## the inner loop: unit, functional and template tests; no sam build, no local stack
	$(BIN)/pytest -m "not build" -q

$(TOOLS_STAMP): requirements/tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet -r requirements/tools.txt
	@touch $@

lint: $(STAMP) $(TOOLS_STAMP) ## ruff, mypy, the rooms' import contracts, the docs site (strict), cfn-lint, bandit, checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/sam validate --lint
	$(BIN)/cfn-lint account.yaml
	$(TOOLS)/bin/bandit -q -r src functions
	$(BIN)/python scripts/sam_transform.py .aws-sam/transformed.json
	BC_SKIP_MAPPING=TRUE $(TOOLS)/bin/checkov --quiet --compact --skip-download \
	  --framework cloudformation -f template.yaml -f .aws-sam/transformed.json -f account.yaml

docs: $(STAMP) ## the docs site on http://127.0.0.1:8000 (Material for MkDocs; make lint builds it strictly)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

validate: $(STAMP) ## sam validate --lint (cfn-lint) on template.yaml
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/sam validate --lint

build: $(STAMP) ## sam build: runtime, serving and model layers plus the functions (ARCH=arm64 for Graviton)
	PATH=$(CURDIR)/$(BIN):$$PATH ARCH=$(ARCH) $(BIN)/sam build --cached $(if $(filter arm64,$(ARCH)),\
	  --parameter-overrides Architecture=arm64 --build-dir .aws-sam/build-arm64 --cache-dir .aws-sam/cache-arm64)

invoke: build ## run the built handler on EVENT (default events/predict.json), no Docker
	$(BIN)/lambdaserve invoke --build-dir $(BUILD_DIR) --event $(EVENT)

up: build ## the local stack, no Docker: the API on 127.0.0.1:3000 (PORT=), AWS on 4566 (AWS_PORT=); PARAMS="CaptureSampleRate=1 ..."
	$(BIN)/lambdaserve local up --port $(PORT) --aws-port $(AWS_PORT) $(foreach p,$(PARAMS),--parameter $(p))

# The region is never invented here: `lambdaserve region` resolves it as the AWS CLI does
# (--region, AWS_REGION, AWS_DEFAULT_REGION, the profile) or says in one line that there is none,
# and sam gets it as --region (sam itself does not read AWS_REGION).
REGION_OF := $(BIN)/lambdaserve $(if $(REGION),--region $(REGION)) region
# sam deploy asks before executing a change set only with CONFIRM=1 (samconfig.toml's
# confirm_changeset would otherwise stop every `make deploy` at a prompt).
CONFIRM ?= 0
CHANGESET := $(if $(filter 1,$(CONFIRM)),--confirm-changeset,--no-confirm-changeset)

deploy: build ## sam deploy STACK, then release its live model (or LOCK=file's) through the judged path (PARAMS="Name=Value ..."; REGION=; CONFIRM=1; GUIDED=1; ADOPT=1 once after migrating)
	@test -n "$(STACK)" || { echo "usage: make deploy STACK=name [REGION=eu-west-1] [PARAMS='AuthMode=AWS_IAM ...'] [LOCK=lambdaserve.lock]"; exit 2; }
	region="$$($(REGION_OF))" && \
	$(BIN)/lambdaserve --region $$region --stack $(STACK) release --check $(if $(ADOPT),--adopt) && \
	overrides="$$($(BIN)/lambdaserve --region $$region --stack $(STACK) init-parameters)" && \
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/sam deploy --stack-name $(STACK) --region $$region \
	  $(if $(GUIDED),--guided) $(CHANGESET) \
	  --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM --resolve-s3 --no-fail-on-empty-changeset \
	  $(DEPLOY_FLAGS) --parameter-overrides $$overrides $(PARAMS) && \
	$(BIN)/lambdaserve --region $$region --stack $(STACK) release \
	  $(if $(LOCK),--lock $(LOCK)) $(if $(ADOPT),--adopt) $(RELEASE_FLAGS)

account-setup: $(STAMP) ## once per account and region: API Gateway's logging role (account.yaml; REGION=)
	region="$$($(REGION_OF))" && \
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/sam deploy --template-file account.yaml \
	  --stack-name lambdaserve-account --region $$region $(CHANGESET) --capabilities CAPABILITY_IAM \
	  --resolve-s3 --no-fail-on-empty-changeset $(DEPLOY_FLAGS)

smoke: $(STAMP) ## real AWS only, never CI: deploy STACK, predict, canary, promote, rollback, delete
	@test -n "$(STACK)" || { echo "usage: make smoke STACK=name"; exit 2; }
	scripts/smoke.sh $(STACK)

bench/.deps/.installed: bench/requirements.txt
	rm -rf bench/.deps
	$(BIN)/python -m pip install --quiet --no-deps --only-binary=:all: \
	  --platform manylinux_2_28_x86_64 --implementation cp --python-version 3.12 --abi cp312 \
	  --target bench/.deps -r bench/requirements.txt
	@touch $@

bench: build bench/.deps/.installed ## benchmarks of the built artifacts (results outside the tree: make bench-publish)
	$(BIN)/python bench/run.py

bench-batch: build ## batch scoring: a child vs raw predict_proba, memory on 50/500 MB parts, 1M rows on the local stack
	$(BIN)/python bench/batch.py

bench-monitoring: $(STAMP) ## drift monitor: false alarms, smallest shift detected, capture latency, monitor cost
	$(BIN)/python bench/monitoring.py

bench-engines: build ## ONNX Runtime against scikit-learn: cold init vs the floor, warm overhead, sizes, parity on the test zoo
	$(BIN)/python bench/engines.py

bench-protocols: build ## /predict's JSON against OIP tensors as JSON and binary, per engine, vs the engine's own time
	$(BIN)/python bench/protocols.py

bench-gc: build ## collector pauses in a warm predict function: init frozen (gc.freeze) against thawed, interleaved
	$(BIN)/python bench/gc_pauses.py

bench-shadow: build ## live's p50/p99 with a 100% shadow against none, interleaved, on the local stack
	$(BIN)/python bench/shadow.py

loadtest: build ## the Black-Friday profile (locust) on the local stack under none, provisioned, snapstart (results outside the tree)
	$(BIN)/python bench/loadtest/run.py

BENCH_OUT ?= $(or $(LAMBDASERVE_BENCH_OUT),$(HOME)/.cache/lambdaserve/bench)
bench-publish: ## copy the newest bench results (outside the tree) to docs/performance/, the docs' performance page
	@test -d "$(BENCH_OUT)" || { echo "no bench results in $(BENCH_OUT): run a make bench* first"; exit 1; }
	cp -v $(wildcard $(BENCH_OUT)/*.json $(BENCH_OUT)/*.md $(BENCH_OUT)/*.png) docs/performance/

sample: $(STAMP) ## train the sample retail model into ./sample-bundle
	$(BIN)/lambdaserve sample train --out sample-bundle

clean: ## remove the venv and build output
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache sample-bundle .lambdaserve-local
