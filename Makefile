.PHONY: install up test check bench clean

install:
	@bash scripts/install.sh

up: install
	.venv/bin/minicloud up

test: install
	.venv/bin/python -m pytest -q -p no:cacheprovider tests

check: install
	.venv/bin/ruff check minicloud tests bench
	.venv/bin/mypy

bench: install
	.venv/bin/python bench/run.py

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
