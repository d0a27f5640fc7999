# tandem: `make paper` paper-trades the bundled month; `make test` runs the test suite.
# Both create .venv (with the pinned tree in requirements.lock) when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: paper test bench install clean

$(BIN)/tandem: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $(BIN)/tandem

install: $(BIN)/tandem

paper: $(BIN)/tandem
	$(BIN)/tandem paper $(ARGS)

test: $(BIN)/tandem
	$(BIN)/python -m pytest -q $(ARGS)

bench: $(BIN)/tandem
	$(BIN)/tandem bench $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
