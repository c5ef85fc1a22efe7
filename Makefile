# Two commands matter: `make demo` and `make test`. Both install what they need first.
VENV    ?= .venv
PYTHON  ?= python3
BIN      = $(VENV)/bin
STAMP    = $(VENV)/.installed

.PHONY: setup demo test bench soak clean sandbox-down pictures

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/migrator demo

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Differential fuzzer (fuzz/): rounds with new seeds for SOAK_MINUTES; one line per round, exit 1 on any difference.
SOAK_MINUTES ?= 10
soak: setup
	$(BIN)/python -m fuzz.soak --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

bench: setup
	$(BIN)/python benchmarks/run_all.py

# The README's pictures from a real run (docs/img/*.png): matplotlib and Pillow, no system library.
pictures: setup
	$(BIN)/pip install --quiet -e '.[docs]'
	$(BIN)/migrator sandbox up --sources 2
	$(BIN)/python scripts/status_picture.py
	$(BIN)/python scripts/dashboard_picture.py

sandbox-down:
	$(BIN)/migrator sandbox down

clean: sandbox-down
	rm -rf $(VENV) .migrator-sandbox
