# One entry point for installs and checks (CI runs `make install-dev check`).
PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: install install-dev lint typecheck test test-fast coverage check

install:  ## the package with PyTorch (CPU wheel pinned to 2.13.0)
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[torch,onnx,export]"

install-dev: install  ## + linters, type checker, tests
	$(PIP) install -q -e ".[torch,onnx,export,serve,distill,dev]"

lint:
	$(PY) -m ruff check src tests scripts

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest -q

test-fast:  ## everything except the tests marked slow (end-to-end training, fuzzing, C++ build, servers)
	$(PY) -m pytest -q -m "not slow"

coverage:  ## the whole suite with line coverage of src/crnn; fails under the floor in pyproject.toml
	$(PY) -m pytest -q --cov=crnn --cov-report=term-missing:skip-covered

check: lint typecheck test
