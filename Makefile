# Two entry points: `make run` (main job on the embedded synthetic default) and `make test`.
# `make run` installs only what the job needs; PyTorch and Keras are test oracles and benchmark peers,
# so `make test` and `make bench` add them (with pytest) on top, in the same .venv.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test bench clean

# the package and its runtime dependencies: all that `make run` and `.venv/bin/jena-rnn` need
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $(STAMP)

# pytest and the optional test oracles; a missing oracle skips its tests (they say so), nothing else
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q 'torch==2.13.0' || echo "torch 2.13.0 not installable here: PyTorch cross-checks will be skipped"
	$(PY) -m pip install -q 'keras==3.15.1' || echo "keras 3.15.1 not installable here: Keras cross-checks will be skipped"
	touch $(TEST_STAMP)

run: $(STAMP)
	$(VENV)/bin/jena-rnn train --model gru --units 32 --epochs 20 --steps-per-epoch 500 --out runs/gru --resume

test: $(TEST_STAMP)
	$(PY) -m pytest -q

bench: $(TEST_STAMP)
	$(PY) -m pip install -q -e '.[keras]' || echo "keras/tensorflow not installable here: the Keras peer will be skipped"
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
