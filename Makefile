# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
VENVS := .venvs
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: demo test bench lint venvs clean

$(VENV)/.installed: setup.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10) and "tap-fullstory needs Python 3.10 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_QUIET) -e '.[test]'
	touch $@

# Each Singer target and tool lives in its own virtualenv: their pins clash with the tap's.
$(VENVS)/target-jsonl/.installed:
	$(PYTHON) -m venv $(VENVS)/target-jsonl
	$(VENVS)/target-jsonl/bin/pip install $(PIP_QUIET) target-jsonl==0.1.4
	touch $@

$(VENVS)/singer-tools/.installed:
	$(PYTHON) -m venv $(VENVS)/singer-tools
	$(VENVS)/singer-tools/bin/pip install $(PIP_QUIET) singer-tools==0.4.1
	touch $@

$(VENVS)/target-postgres/.installed:
	$(PYTHON) -m venv $(VENVS)/target-postgres
	$(VENVS)/target-postgres/bin/pip install $(PIP_QUIET) meltanolabs-target-postgres==0.8.1
	touch $@

$(VENVS)/target-csv/.installed:
	$(PYTHON) -m venv $(VENVS)/target-csv
	$(VENVS)/target-csv/bin/pip install $(PIP_QUIET) meltanolabs-target-csv==0.5.0
	touch $@

$(VENVS)/meltano/.installed:
	$(PYTHON) -m venv $(VENVS)/meltano
	$(VENVS)/meltano/bin/pip install $(PIP_QUIET) meltano==4.4.1
	touch $@

$(VENVS)/target-duckdb/.installed:
	$(PYTHON) -m venv $(VENVS)/target-duckdb
	$(VENVS)/target-duckdb/bin/pip install $(PIP_QUIET) target-duckdb==0.8.0 duckdb==1.1.3
	touch $@

$(VENVS)/pipelinewise-target-postgres/.installed:
	$(PYTHON) -m venv $(VENVS)/pipelinewise-target-postgres
	$(VENVS)/pipelinewise-target-postgres/bin/pip install $(PIP_QUIET) \
		pipelinewise-target-postgres==2.1.2
	touch $@

$(VENVS)/lint/.installed:
	$(PYTHON) -m venv $(VENVS)/lint
	$(VENVS)/lint/bin/pip install $(PIP_QUIET) ruff==0.17.6
	touch $@

venvs: $(VENV)/.installed $(VENVS)/target-jsonl/.installed $(VENVS)/singer-tools/.installed \
	$(VENVS)/target-postgres/.installed $(VENVS)/target-csv/.installed \
	$(VENVS)/meltano/.installed

demo: $(VENV)/.installed $(VENVS)/target-jsonl/.installed
	bash demo/run.sh

test: venvs
	$(VENV)/bin/pytest tests

# Not a test: prints throughput, memory, pipelines, partitions and exports in flight, each as
# a ratio to a floor measured in the same run. `make bench BENCH_ARGS=--quick` for a fast trial.
bench: $(VENV)/.installed $(VENVS)/target-jsonl/.installed $(VENVS)/target-postgres/.installed \
	$(VENVS)/target-duckdb/.installed $(VENVS)/pipelinewise-target-postgres/.installed
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

lint: $(VENVS)/lint/.installed
	$(VENVS)/lint/bin/ruff check .

clean:
	rm -rf $(VENV) $(VENVS) demo-output bench/.cache *.egg-info
