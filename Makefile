# The two commands of the README: `make run` and `make test`.
.PHONY: run test check format pytest setup setup-test bench clean

run: setup
	.venv/bin/tolk seed-demo
	.venv/bin/tolk demo

test: setup-test check pytest

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

check:
	.uv/bin/uv lock --check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports
	node_modules/.bin/prettier --check --log-level warn $(JS_SOURCES)
	node_modules/.bin/eslint --max-warnings 0 $(JS_SOURCES)

# The pages' JavaScript, CSS and HTML: formatted by prettier, linted by eslint.
JS_SOURCES = static eslint.config.js

format:
	node_modules/.bin/prettier --write --log-level warn $(JS_SOURCES)
	node_modules/.bin/eslint --fix $(JS_SOURCES)
	.venv/bin/ruff format .

pytest:
	.venv/bin/pytest -q -p no:cacheprovider --durations=15

bench: setup-test
	cd bench/peerjs && npm ci --silent --no-audit --no-fund
	.venv/bin/python -m bench

clean:
	rm -rf .venv .mypy_cache .ruff_cache node_modules
