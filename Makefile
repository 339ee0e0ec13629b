# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint bench bench-stale bench-peers clean notebooks

$(STAMP): requirements.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tfrec train biased_mf --dataset synthetic --output runs/demo
	@echo "next: serve it with $(VENV)/bin/tfrec export runs/demo/model.keras --export-dir runs/demo/export"
	@echo "      and $(VENV)/bin/tfrec recommend runs/demo/export --user u0 -k 5;"
	@echo "      the README's tour trains on MovieLens 100K, notebooks/ walk each model family"

# Two pytest workers (pytest-xdist), a test file each at a time: the suite ran 1.4x faster on 2 cores.
# `make test` is the fast tier; `make test-all` adds the slow tier (fresh processes, notebooks,
# clusters, quality runs) and is what CI runs.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow" --durations=15

test-all: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --durations=25

# Executes every notebook from notebooks/src/ and stores it with its outputs (reads datasets
# from $$TFREC_DATA_DIR when set, else downloads them once into ~/.tfrec/datasets).
notebooks: $(STAMP)
	$(PY) notebooks/build.py

# Benchmarks need the real data in ../shared/data and the peers (benchmark extras only).
bench-peers: $(STAMP)
	$(PY) -m pip install --quiet "scikit-surprise==1.1.5" "implicit==0.7.3" "faiss-cpu==1.15.1"

bench: bench-peers
	cd bench && ../$(PY) run.py

# Reruns only the sections whose code changed since their last run, then the report.
bench-stale: bench-peers
	cd bench && ../$(PY) run.py --stale

lint: $(STAMP)
	$(VENV)/bin/ruff check tfrec tests bench notebooks

clean:
	rm -rf $(VENV) runs
