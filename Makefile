# The two quickstart commands: `make up` (cluster in containers) and `make test` (everything).
.PHONY: up down local-up local-down images test unit lint protos

up:
	scripts/install-deps
	.venv/bin/kubelite compose up

down:
	.venv/bin/kubelite compose down

local-up:
	scripts/install-deps
	.venv/bin/kubelite up

local-down:
	.venv/bin/kubelite down

images:
	scripts/install-deps
	.venv/bin/kubelite images

# lint runs after install-deps (which brings its tools), so it is called here, not a prerequisite.
test:
	scripts/install-deps --test
	$(MAKE) --no-print-directory lint
	.venv/bin/python -m kubelite.protogen --check
	.venv/bin/python -m kubelite.knownfields --check
	.venv/bin/kubelite images
	.venv/bin/pytest -ra --durations=15 $(PYTEST_ARGS)

unit:
	.venv/bin/pytest -q tests/unit

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports --no-logo

protos:
	.venv/bin/python -m kubelite.protogen
