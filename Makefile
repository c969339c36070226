# Two entry points: `make run` (main job on the embedded synthetic default) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q 'torch==2.13.0' || echo "torch 2.13.0 not installable here: PyTorch cross-checks will be skipped"
	$(PY) -m pip install -q 'keras==3.15.1' || echo "keras 3.15.1 not installable here: Keras cross-checks will be skipped"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/jena-rnn train --model gru --units 32 --epochs 20 --steps-per-epoch 500 --out runs/gru --resume

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[keras]' || echo "keras/tensorflow not installable here: the Keras peer will be skipped"
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
