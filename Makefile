# tandem: `make paper` paper-trades the bundled month; `make test` checks the import contracts
# (lint-imports, pyproject.toml [tool.importlinter]) and runs the test suite.
# Both create .venv (with the pinned tree in requirements.lock) when it is missing.
# `make test` also needs promtool (tests/test_prometheus_rules.py, tests/test_dashboard.py check
# the alert rules and the Grafana queries with it): when it is not on PATH, the `promtool` target
# installs Debian's prometheus package (apt-get, as root or through sudo) and, on a systemd host,
# stops and disables the service the package starts (it would hold :9090). `make paper` does not.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# lint-imports (import-linter) has a venv of its own: in .venv its dependency rich would be imported
# by structlog in every tandem process (~50 ms of each start-up). It reads our packages from source.
LINT_VENV ?= .venv-lint
ARGS   ?=
JOBS   ?= 2  # test processes (pytest-xdist); JOBS=0 runs the suite in this process

# `make portfolio`: the bundled portfolio (Binance BTC, ETH, SOL and BNB/USDT 4-hour bars) with shorts
# and every exit leg on — fast EMAs, a 3 % hard stop, trailing from 4 %, a take-profit on half at 2.5 %,
# breakeven from 1.5 %, entries of 20 % of the portfolio (capped at 25 % per instrument).
PORTFOLIO_FLAGS := --portfolio --allow-short --strategy-params '{"fast": 10, "slow": 30}' --stop-loss-pct 3 \
	--trailing-activation-pct 4 --trailing-pct 2 --partial-tp-pct 2.5 --breakeven-trigger-pct 1.5 --entry-fraction 0.2

# The editable install leaves our own modules uncompiled; with PYTHONDONTWRITEBYTECODE set (as in
# many containers and CI images) every process would compile them again at start-up (~0.15 s of
# `make paper`), so the install compiles them once. A module edited later is recompiled in memory.
PACKAGES := protocol foundation brain executor tandem testbed

.PHONY: paper portfolio test bench install promtool clean

$(BIN)/tandem: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	$(BIN)/python -m compileall -q $(PACKAGES)
	touch $(BIN)/tandem

install: $(BIN)/tandem

$(LINT_VENV)/bin/lint-imports: pyproject.toml requirements.lock
	test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock import-linter
	touch $(LINT_VENV)/bin/lint-imports

paper: $(BIN)/tandem
	$(BIN)/tandem paper $(ARGS)

portfolio: $(BIN)/tandem
	$(BIN)/tandem paper $(PORTFOLIO_FLAGS) $(ARGS)

promtool:
	@if ! command -v promtool >/dev/null 2>&1; then \
	  echo "promtool not found: installing Debian's prometheus package (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "make: promtool is missing and neither root nor sudo is available: install the 'prometheus' package" >&2; exit 1; fi; \
	  $$SUDO apt-get update \
	    && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
	    && command -v promtool >/dev/null \
	    && if [ -d /run/systemd/system ]; then \
	         echo "stopping and disabling the prometheus service the package started (tests run their own)"; \
	         $$SUDO systemctl disable --now prometheus; \
	       fi; \
	fi

test: $(BIN)/tandem $(LINT_VENV)/bin/lint-imports promtool
	PYTHONPATH=$(CURDIR) $(LINT_VENV)/bin/lint-imports
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadfile $(ARGS)

bench: $(BIN)/tandem
	$(BIN)/tandem bench $(ARGS)

clean:
	rm -rf $(VENV) $(LINT_VENV) runs .pytest_cache
