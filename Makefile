# Two commands do everything: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
IMAGES ?= hashtags
HASHTAG = $(VENV)/bin/hashtag

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The workshop offline: a synthetic sample set if $(IMAGES) has no hashtag folders yet,
# then train -> (the summary shows test accuracy) -> predict one image of each hashtag.
demo: setup
	@if ! find $(IMAGES) -mindepth 2 -name '*.jpg' -print -quit 2>/dev/null | grep -q .; then \
		$(HASHTAG) sample --dest $(IMAGES); fi
	$(HASHTAG) train --image_dir $(IMAGES)
	$(HASHTAG) predict --model models/latest $$(for d in $(IMAGES)/*/; do \
		find "$$d" -maxdepth 1 -type f -iname '*.jp*g' | sort | head -n 1; done)

# quick mode: notebooks run on tiny data in .quick/ (CI=true implies it too)
test: setup
	HASHTAG_QUICK=1 $(PY) -m pytest

bench: setup
	$(PY) bench/bench_features.py
	$(PY) bench/bench_train.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
