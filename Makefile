# Two commands do everything: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
IMAGES ?= hashtags

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: setup
	$(VENV)/bin/hashtag features $(IMAGES) --output features.npz

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/bench_features.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
