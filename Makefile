# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv with python3 -m venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench browser java

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/flywheel demo

# Headless Chromium for the HTML report tests: installed with apt-get when missing (best effort, quiet);
# without it those tests skip with a message (-rs lists skip reasons).
browser:
	@bash .ci/browser --quiet

# --dist loadfile keeps a module's tests on one worker, so its module-scoped fixtures are built once, not once per
# worker; data shared by several modules (the simulated month) is built once per session (tests/session_cache.py).
# tests/conftest.py hands modules out longest first (tests/module_seconds.json) so the two workers end together.
# Java for the Spark parity suite (tests/parity), installed with apt-get when missing; without it those tests skip
# naming the step that failed (.ci/run makes that a failure).
java:
	@bash .ci/java --quiet || true

test: $(STAMP) browser java
	$(BIN)/python -m pytest -n 2 --dist loadfile -rs --durations=15 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_metrics.py

clean:
	rm -rf $(VENV) .flywheel build *.egg-info
