# Everything a fresh machine needs: Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PYTHONASYNCIODEBUG := 1

.PHONY: install test lint typecheck pytest demo bench faults clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,metrics]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# Four workers on two cores: the suite mostly waits on sockets and timers.
pytest: $(STAMP)
	$(BIN)/pytest -q -n 4 --dist load

test: lint typecheck pytest

demo: $(STAMP)
	PYTHONASYNCIODEBUG= $(BIN)/v6-ib demo

bench: $(STAMP)
	PYTHONASYNCIODEBUG= $(BIN)/python -m benchmarks

faults: $(STAMP)
	V6_WRITE_FAULTS=1 $(BIN)/pytest -q -m faults

clean:
	rm -rf $(VENV) build src/*.egg-info
