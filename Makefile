# Two commands: `make demo` and `make test`. Both create the environment first: uv from the committed uv.lock
# (uv itself is bootstrapped into .tools/ with pip when it is not on the PATH).
PY ?= python3
UV ?= $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif
export RAGAS_DO_NOT_TRACK := true
export UV_NO_PROGRESS := 1

.PHONY: env demo test bench lab clean

.tools/bin/uv:
	$(PY) -m venv .tools
	.tools/bin/pip install --quiet uv

# The package's own modules are byte-compiled too (uv compiles only the dependencies): a process that may not
# write __pycache__ (PYTHONDONTWRITEBYTECODE, a read-only checkout) would compile them again on every start, 0.13 s
# of a metric's first call.
env: $(UV)
	$(UV) sync --frozen --compile-bytecode --extra ragas --extra lab --extra spark --extra nli
	$(UV) run --frozen --no-sync python -m compileall -q workbench

demo: env
	$(UV) run --frozen --no-sync workbench demo --db datasets/demo.duckdb --reports reports

test: env
	$(UV) run --frozen --no-sync pytest

bench: env
	$(UV) run --frozen --no-sync python benchmarks/run_all.py $(if $(QUICK),--quick)

lab: env
	WORKBENCH_DB=$${WORKBENCH_DB:-$(CURDIR)/datasets/demo.duckdb} WORKBENCH_CONFIG=$${WORKBENCH_CONFIG:-$(CURDIR)/workbench.toml} \
	$(UV) run --frozen --no-sync jupyter lab --ServerApp.root_dir=$(CURDIR) notebooks/

clean:
	rm -rf .venv .tools datasets/demo.duckdb
