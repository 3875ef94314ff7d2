# docclass: `make demo` and `make test` set up .venv first (quick when already set up).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DO_NOT_TRACK ?= true
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: setup demo server test test-fast bench bench-realtime bench-accuracy bench-throughput bench-train-scale bench-candidates clean

setup: $(STAMP)

# uv installs the pinned set in seconds (pip takes ~95 s); --compile-bytecode because this
# machine sets PYTHONDONTWRITEBYTECODE and imports would stay 2-3x slower.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) -m flows.demo

# A local Prefect server with the deployments of deployments/prefect.yaml and a worker (Ctrl-C stops).
server: setup
	$(VENV)/bin/docclass server

# Every core: most tests wait on processes they start (the CLI, servers), so even 2 cores take
# the suite from 26 to 16-18 minutes. Each worker starts its own Prefect and S3 servers; a test
# module runs whole on one worker (loadscope), so the models its fixtures train are trained once
# (split across workers, the real-time module's were trained three times).
test: setup
	$(PY) -m pytest -n auto --dist loadscope

test-fast: setup
	$(PY) -m pytest -n auto --dist loadscope -m "not slow"

# Benchmarks read ../shared/data and are not part of the test suite.
bench: bench-realtime bench-accuracy bench-throughput bench-train-scale bench-candidates

# wrk, a C load generator, keeps the load off Python; it is a Debian package.
bench-realtime: setup
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) benchmarks/realtime.py

# docclass against fastText and two TF-IDF + LinearSVC peers on every dataset (several minutes).
bench-accuracy: setup
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[bench]'
	$(PY) benchmarks/accuracy.py

# Job throughput and memory against fastText's predict (several minutes; 1M lines).
bench-throughput: setup
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[bench]'
	$(PY) benchmarks/throughput.py

# docclass train on 100k and 1M AG-News-length documents: time, peak memory, accuracy (several minutes).
bench-train-scale: setup
	$(PY) benchmarks/train_scale.py

# Scoring speed of each candidate's feature set (a job's speed follows the chosen one).
bench-candidates: setup
	$(PY) benchmarks/candidate_scoring.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
